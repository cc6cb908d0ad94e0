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
  /** How long the running instance had been READY at the status's `updatedAt`, in ms (see statusAt). */
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

/**
 * The status as of `nowMs`. The serving gateway does not rewrite its status file while only
 * uptimes change, so the file holds each uptime as of `updatedAt`: for a gateway that still
 * runs, the time since is added. One that stopped or died keeps the uptimes it last wrote.
 */
export function statusAt(status: FleetStatus, running: boolean, nowMs: number): FleetStatus {
  const updated = Date.parse(status.updatedAt);
  if (!running || Number.isNaN(updated)) return status;
  const elapsed = Math.max(0, nowMs - updated);
  return { ...status, servers: status.servers.map((s) => (s.uptimeMs !== undefined ? { ...s, uptimeMs: s.uptimeMs + elapsed } : s)) };
}
