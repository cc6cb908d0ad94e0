import type { ToolCallOutcome } from "../core/audit/audit-record.js";
import type { VerdictKind } from "../core/decision.js";
import type { BreakerState } from "../core/gateway/circuit-breaker.js";
import type { ServerState } from "../core/gateway/lifecycle.js";

/**
 * The fleet as `hangar status` shows it. The serving process keeps it in a status file
 * (see status-file.ts), rewritten about once a second while something changes.
 */
export type CallCounts = Record<ToolCallOutcome | "total", number>;
export type EgressCounts = Record<VerdictKind, number>;

export interface ServerStatus {
  readonly name: string;
  readonly state: ServerState;
  /** ISO time the state was entered. */
  readonly since: string;
  /** How long the running instance has been READY, in ms. */
  readonly uptimeMs?: number;
  readonly mode: "enforcing" | "observing";
  readonly approval: "approved" | "unapproved" | "changed";
  readonly approvalId?: string;
  readonly upstream?: string;
  readonly calls: CallCounts;
  readonly callsInFlight: number;
  readonly lastError?: { readonly at: string; readonly message: string };
  /** Egress and DNS decisions by verdict (one per attempt). */
  readonly egress: EgressCounts;
  readonly restarts: number;
  readonly breaker: BreakerState;
  readonly tools: number;
  readonly withheld: readonly string[];
  readonly drift?: { readonly changed: readonly string[]; readonly added: readonly string[]; readonly removed: readonly string[] };
}

export interface FleetStatus {
  readonly version: 1;
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  /** Set once the gateway has shut down. */
  readonly stoppedAt?: string;
  readonly endpoint: { readonly kind: "stdio" | "http"; readonly url?: string };
  readonly launcher: { readonly kind: string; readonly sandboxed: boolean };
  readonly audit: string;
  readonly servers: readonly ServerStatus[];
}

export function emptyCallCounts(): CallCounts {
  return { total: 0, ok: 0, error: 0, denied: 0, withheld: 0, unavailable: 0, timeout: 0, cancelled: 0 };
}

export function emptyEgressCounts(): EgressCounts {
  return { allow: 0, flag: 0, block: 0, "would-block": 0 };
}
