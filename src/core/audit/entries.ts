import type { EgressEvent } from "../events.js";
import type { AttributedCall, AuditEntry, ToolCallOutcome } from "./audit-record.js";
import { redactSecrets, secretValueReplacer, truncate, type RedactionRules } from "./redaction.js";
import { summariseResult } from "./result-summary.js";

/**
 * Builders for the entries the gateway appends. They are the safe way in: a tool call's
 * raw arguments, result and error go through redaction here, so a caller cannot log them
 * unredacted by forgetting a step.
 */
export interface ToolCallInput {
  readonly callId: string;
  readonly identity: string;
  readonly session?: string;
  readonly server: string;
  readonly tool: string;
  /** The raw arguments, as the client sent them. */
  readonly arguments: unknown;
  /** The raw result, when the server answered. */
  readonly result?: unknown;
  readonly durationMs: number;
  readonly outcome: ToolCallOutcome;
  readonly error?: string;
  /** Overrides the store's clock, e.g. the call's end time. */
  readonly ts?: string;
}

const MAX_ERROR_LENGTH = 1024;

export function toolCallEntry(call: ToolCallInput, rules: RedactionRules = {}): AuditEntry {
  const redactValues = secretValueReplacer(rules.secretValues ?? []);
  return {
    kind: "tool-call",
    ...(call.ts !== undefined ? { ts: call.ts } : {}),
    data: {
      callId: call.callId,
      identity: call.identity,
      ...(call.session !== undefined ? { session: call.session } : {}),
      server: call.server,
      tool: call.tool,
      arguments: redactSecrets(call.arguments ?? {}, rules),
      ...(call.result !== undefined ? { result: summariseResult(call.result, rules.secretValues !== undefined ? { secretValues: rules.secretValues } : {}) } : {}),
      durationMs: call.durationMs,
      outcome: call.outcome,
      ...(call.error !== undefined ? { error: truncate(redactValues(call.error), MAX_ERROR_LENGTH) } : {}),
    },
  };
}

/** An egress event with the calls it is attributed to (see InFlightCalls). The event's own ts becomes the record's. */
export function egressEntry(event: EgressEvent, calls: readonly AttributedCall[]): AuditEntry {
  const ms = Date.parse(event.ts);
  return {
    kind: "egress",
    ...(Number.isFinite(ms) ? { ts: new Date(ms).toISOString() } : {}),
    data: { server: event.server, event, attribution: { calls: [...calls] } },
  };
}
