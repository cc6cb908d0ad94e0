import type { EgressEvent } from "../events.js";
import type { JsonObject, JsonValue } from "./canonical-json.js";

/**
 * The audit record model, format version 1. A record is one fact the control plane
 * observed; `data` is its kind-specific payload. Every payload that concerns a server
 * carries `server` at its top level, and every payload with an acting identity carries
 * `identity`, so queries filter every kind the same way.
 */
export const AUDIT_KINDS = ["tool-call", "egress", "lifecycle", "approval", "policy"] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export function isAuditKind(value: unknown): value is AuditKind {
  return typeof value === "string" && (AUDIT_KINDS as readonly string[]).includes(value);
}

/** How a tool call ended, as the gateway saw it. */
export type ToolCallOutcome =
  | "ok" // the server answered with a result
  | "error" // the server answered with an error, or the result had isError
  | "denied" // RBAC refused the call; the server never saw it
  | "withheld" // the tool's manifest drifted from its approval (ENFORCING)
  | "unavailable" // the server could not be started, or its breaker is open
  | "timeout"
  | "cancelled";

/** What a result looked like, without its content (see summariseResult). */
export interface ResultSummary {
  readonly isError: boolean;
  /** Content items by type, e.g. { text: 2, image: 1 }. */
  readonly contentTypes: Readonly<Record<string, number>>;
  /** UTF-8 bytes of all text content. */
  readonly textBytes: number;
  /** The start of the text content, with secrets redacted. */
  readonly preview?: string;
}

export interface ToolCallData {
  /** The gateway's id for the call; egress records refer to it. */
  readonly callId: string;
  readonly identity: string;
  readonly session?: string;
  readonly server: string;
  readonly tool: string;
  /** The call's arguments after redactSecrets. Never the raw arguments. */
  readonly arguments: JsonValue;
  readonly result?: ResultSummary;
  readonly durationMs: number;
  readonly outcome: ToolCallOutcome;
  /** Why the call did not succeed: an error message or the missing permission. */
  readonly error?: string;
}

/** A tool call that was in flight on the same server when an egress event happened. */
export interface AttributedCall {
  readonly callId: string;
  readonly tool: string;
  readonly identity: string;
  readonly session?: string;
}

export interface EgressData {
  readonly server: string;
  /** The sidecar's event, kept field by field (see egressEntry): names, never values. */
  readonly event: EgressEvent;
  readonly attribution: {
    /** Empty when no call was in flight (e.g. a server's own startup traffic). */
    readonly calls: readonly AttributedCall[];
  };
  /** The drift codes among the event's reasons (`new-request-field`, `new-http-route`, ...), when it drifted. Absent in records written before it existed. */
  readonly drift?: readonly string[];
}

export interface LifecycleData {
  readonly server: string;
  /** E.g. "starting", "ready", "degraded", "dead", "restarted", "idle-stopped", "breaker-open". */
  readonly action: string;
  /** COLD | STARTING | READY | DEGRADED | DEAD, when the action is a state change. */
  readonly state?: string;
  readonly detail?: JsonObject;
}

export interface ApprovalData {
  readonly approvalId: string;
  readonly server: string;
  readonly action: "request" | "grant" | "deny" | "revoke";
  /** Who requested, granted, denied or revoked. */
  readonly identity: string;
  readonly reason?: string;
  /** What the approval pins: image digest, npm version and integrity, manifest digest. */
  readonly pins?: JsonObject;
  /** A grant's tools granted despite manifest-scan findings: tool name → the tool digest granted. */
  readonly tools?: Readonly<Record<string, string>>;
}

export interface PolicyData {
  /** E.g. "policy-loaded", "mode-changed", "manifest-drift", "baseline-frozen". */
  readonly action: string;
  readonly server?: string;
  readonly tool?: string;
  readonly identity?: string;
  readonly detail?: JsonObject;
}

export interface AuditDataByKind {
  "tool-call": ToolCallData;
  egress: EgressData;
  lifecycle: LifecycleData;
  approval: ApprovalData;
  policy: PolicyData;
}

/** What a caller appends: a kind, its payload, and optionally its own timestamp. */
export type AuditEntry = {
  [K in AuditKind]: { readonly kind: K; readonly data: AuditDataByKind[K]; readonly ts?: string };
}[AuditKind];

/** A record as stored: the entry plus its place in the chain. */
export interface AuditRecord {
  /** 1, 2, 3, ... with no gaps. */
  readonly seq: number;
  /** ISO-8601 UTC with milliseconds, e.g. 2025-01-02T03:04:05.678Z. */
  readonly ts: string;
  readonly kind: AuditKind;
  readonly data: JsonValue;
  /** The previous record's hash; for seq 1, the log's genesis hash. */
  readonly prevHash: string;
  /** SHA-256 (hex) of the record's canonical form; see hash-chain.ts. */
  readonly hash: string;
}

/** A record's data narrowed by its kind, for consumers that trust the log's writer. */
export function recordData<K extends AuditKind>(record: AuditRecord, kind: K): AuditDataByKind[K] | undefined {
  return record.kind === kind ? (record.data as unknown as AuditDataByKind[K]) : undefined;
}
