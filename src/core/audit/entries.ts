import type { EgressEvent } from "../events.js";
import { targetWithoutValues } from "../request-shape.js";
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

/**
 * An egress event with the calls it is attributed to (see InFlightCalls). The event's own ts
 * becomes the record's. The event is kept field by field from a known list, so only names
 * reach the log: the request's method, path template, query keys, header and body field
 * names, and the drift (`drift`: its codes, such as `new-request-field`; `event.driftFields`:
 * what was new). A field the list does not know (a newer sidecar's) is left out rather than
 * trusted, and a URL keeps its query keys without their values.
 */
export function egressEntry(event: EgressEvent, calls: readonly AttributedCall[]): AuditEntry {
  const ms = Date.parse(event.ts);
  const drift = event.reasons.filter((r) => r.startsWith("drift-")).map((r) => r.slice("drift-".length));
  return {
    kind: "egress",
    ...(Number.isFinite(ms) ? { ts: new Date(ms).toISOString() } : {}),
    data: { server: event.server, event: auditedEvent(event), attribution: { calls: [...calls] }, ...(drift.length > 0 ? { drift } : {}) },
  };
}

const MAX_EVENT_ERROR_LENGTH = 512;

/** The fields of an egress event the audit log keeps: names, counts and verdicts; never a query, header or body value. */
function auditedEvent(e: EgressEvent): EgressEvent {
  const list = (xs: readonly string[] | undefined): string[] | undefined => (xs === undefined ? undefined : [...xs]);
  const optional = {
    rule: e.rule,
    name: e.name,
    nameAsSent: e.nameAsSent,
    port: e.port,
    ip: e.ip,
    path: e.path,
    recordType: e.recordType,
    sni: e.sni,
    host: e.host,
    connect: e.connect,
    method: e.method,
    url: e.url === undefined ? undefined : targetWithoutValues(e.url),
    pathTemplate: e.pathTemplate,
    queryKeys: list(e.queryKeys),
    headerNames: list(e.headerNames),
    bodyKind: e.bodyKind,
    bodyFields: list(e.bodyFields),
    bodyNotInspected: e.bodyNotInspected,
    driftFields: list(e.driftFields),
    // Secret names and places, credential shape names, substitutions: never a value.
    secretLeaks: list(e.secretLeaks),
    credentials: list(e.credentials),
    injected: list(e.injected),
    client: e.client,
    bytesUp: e.bytesUp,
    bytesDown: e.bytesDown,
    durationMs: e.durationMs,
    error: e.error === undefined ? undefined : truncate(e.error, MAX_EVENT_ERROR_LENGTH),
  };
  const kept = Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined));
  return { v: e.v, ts: e.ts, id: e.id, type: e.type, phase: e.phase, server: e.server, verdict: e.verdict, reasons: [...e.reasons], protocol: e.protocol, ...kept } as EgressEvent;
}
