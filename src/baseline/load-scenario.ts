import { ScenarioSchema, scenarioJsonSchema, type Scenario } from "../core/baseline/scenario-schema.js";
import { knownKeysAt, parseYamlMapping, readTextFile, schemaIssues, sortIssues, type PolicyIssue } from "../policy/index.js";
import { suggestKey } from "../policy/suggest-key.js";

/** A scenario is a short list of calls; a large file is a mistake. */
export const MAX_SCENARIO_BYTES = 1024 * 1024;

export interface LoadedScenario {
  readonly file: string;
  readonly scenario: Scenario;
  /** Where each call's `tool` value sits, to position later findings (an unknown tool). */
  readonly toolPositions: readonly { readonly line: number; readonly col: number }[];
}

export type ScenarioLoadResult =
  | ({ readonly ok: true; readonly warnings: readonly PolicyIssue[] } & LoadedScenario)
  | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

type JsonSchemaArg = Parameters<typeof knownKeysAt>[1];

/** Parses and validates scenario YAML, with issues positioned like policy issues. Pure. */
export function parseScenarioText(text: string, file: string): ScenarioLoadResult {
  const yaml = parseYamlMapping(text, file, { noun: "scenario", emptyHint: "it needs a list of calls, as in: calls: [{ tool: my_tool }]" });
  if (!yaml.ok) return yaml;
  const parsed = ScenarioSchema.safeParse(yaml.data);
  if (!parsed.success) {
    const schema = scenarioJsonSchema() as JsonSchemaArg;
    return { ok: false, issues: sortIssues([...yaml.warnings, ...schemaIssues(parsed.error.issues, yaml.locator, file, (path) => knownKeysAt(path, schema))]) };
  }
  const toolPositions = parsed.data.calls.map((_, i) => {
    const { line, col } = yaml.locator.at(["calls", i, "tool"]);
    return { line, col };
  });
  return { ok: true, warnings: yaml.warnings, file, scenario: parsed.data, toolPositions };
}

export async function loadScenarioFile(path: string, options: { readonly displayName?: string } = {}): Promise<ScenarioLoadResult> {
  const file = options.displayName ?? path;
  const read = await readTextFile(path, { displayName: file, maxBytes: MAX_SCENARIO_BYTES, noun: "scenario file" });
  if (!read.ok) return read;
  return parseScenarioText(read.text, file);
}

/**
 * Calls to tools the server does not offer, once its tool list is known; each positioned
 * on its `tool:` value, with a "did you mean" when a real tool is close.
 */
export function unknownToolIssues(loaded: LoadedScenario, available: readonly string[]): PolicyIssue[] {
  const offered = new Set(available);
  return loaded.scenario.calls.flatMap((call, i): PolicyIssue[] => {
    if (offered.has(call.tool)) return [];
    const guess = suggestKey(call.tool, available);
    const { line, col } = loaded.toolPositions[i] ?? { line: 0, col: 0 };
    const hint = guess !== undefined ? `; did you mean ${JSON.stringify(guess)}?` : available.length > 0 ? `; it offers ${[...available].sort().join(", ")}` : "; it offers no tools";
    return [{ file: loaded.file, line, col, path: ["calls", i, "tool"], severity: "error", code: "unknown_tool", message: `${JSON.stringify(call.tool)} is not a tool of this server${hint}` }];
  });
}
