import * as z from "zod";

/**
 * Scenario file format: the tool calls a replay or a recording makes, in order. Strict like
 * policies: a misspelt `repat:` must be an error, never a silent "once".
 */
const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

export const MAX_REPEAT = 1000;

const call = z.strictObject({
  tool: z
    .string({ error: (iss) => `${show(iss.input)} is not a tool name` })
    .min(1, { error: "tool must name a tool" })
    .max(200, { error: "a tool name is at most 200 characters" }),
  arguments: z.record(z.string(), z.unknown(), { error: (iss) => `arguments must be a mapping of argument names to values, not ${show(iss.input)}` }).default({}),
  repeat: z
    .number({ error: (iss) => `${show(iss.input)} is not a repeat count` })
    .int({ error: (iss) => `${show(iss.input)} is not a whole number of repeats` })
    .min(1, { error: (iss) => `${show(iss.input)} is not a valid repeat count (1-${MAX_REPEAT})` })
    .max(MAX_REPEAT, { error: (iss) => `${show(iss.input)} is not a valid repeat count (1-${MAX_REPEAT})` })
    .default(1),
});

export const ScenarioSchema = z.strictObject({
  description: z.string().max(500).optional(),
  calls: z.array(call).min(1, { error: "a scenario needs at least one call" }),
});

export type Scenario = z.output<typeof ScenarioSchema>;
export type ScenarioCall = Scenario["calls"][number];

export interface PlannedCall {
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Position in the file (0-based) and repetition (0-based), for reports. */
  readonly index: number;
  readonly repetition: number;
}

/** The calls in the order they are made, with `repeat` unrolled. */
export function planCalls(scenario: Scenario): PlannedCall[] {
  return scenario.calls.flatMap((c, index) => Array.from({ length: c.repeat }, (_, repetition) => ({ tool: c.tool, arguments: c.arguments, index, repetition })));
}

export function scenarioJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ScenarioSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
