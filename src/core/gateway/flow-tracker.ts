import type { Mode, ToolLabel } from "../policy/policy-schema.js";
import { globMatches } from "./glob.js";

/**
 * Composition constraints over one client session of the gateway (one MCP session, across
 * every server): the GitHub "toxic agent flow" and the "lethal trifecta" are chains of calls
 * each allowed alone. hangar.yaml's `flows:` name such chains by the labels of their tools:
 *
 *   deny: { after: [reads-private, reads-untrusted], call: [sends-external, writes-public] }
 *
 * A call is refused when it carries ANY label of `call` and the session's earlier calls
 * carry EVERY label of `after` (in any order, over any servers). Only calls the gateway let
 * through count as earlier calls: a refused call never ran.
 *
 * The state is bounded: per session one remembered call per label (the first that carried
 * it) and a call count; at most `maxSessions` sessions, the least recently active dropped
 * first; a session idle for `idleTtlMs` is forgotten, and one that ends is dropped at once.
 * Pure: the caller passes the clock's time.
 */
export interface FlowRule {
  readonly name: string;
  readonly deny: { readonly after: readonly ToolLabel[]; readonly call: readonly ToolLabel[] };
  /** Overrides the mode of the called tool's server for this flow. */
  readonly mode?: Mode;
}

/** One call the session made, as a flow decision cites it. */
export interface FlowCall {
  readonly callId: string;
  readonly server: string;
  /** The server's own name for the tool. */
  readonly tool: string;
  readonly labels: readonly ToolLabel[];
  readonly at: number;
}

export interface FlowViolation {
  readonly flow: string;
  readonly mode: Mode;
  /** The labels of the call being decided that the flow denies. */
  readonly labels: readonly ToolLabel[];
  /** The earlier calls that carried the flow's `after` labels, oldest first (one per label, deduplicated). */
  readonly chain: readonly FlowCall[];
}

export interface FlowLimits {
  readonly maxSessions: number;
  readonly idleTtlMs: number;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = { maxSessions: 10_000, idleTtlMs: 12 * 60 * 60 * 1000 };

interface SessionState {
  readonly first: Map<ToolLabel, FlowCall>;
  calls: number;
  lastSeen: number;
}

export class FlowTracker {
  private readonly sessions = new Map<string, SessionState>();
  private readonly limits: FlowLimits;
  private lastSweep = 0;

  constructor(
    readonly rules: readonly FlowRule[],
    limits: Partial<FlowLimits> = {},
  ) {
    this.limits = { ...DEFAULT_FLOW_LIMITS, ...limits };
  }

  /** Whether any rule exists: without one the gateway skips the tracker entirely. */
  get active(): boolean {
    return this.rules.length > 0;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * The flows a call with `labels` would complete in `session`, each with the mode it is
   * decided in (`serverMode` unless the flow sets its own). Does not record the call.
   */
  check(session: string, labels: readonly ToolLabel[], serverMode: Mode, now: number): FlowViolation[] {
    if (labels.length === 0) return [];
    const state = this.live(session, now);
    if (state === undefined) return [];
    const out: FlowViolation[] = [];
    for (const rule of this.rules) {
      const denied = labels.filter((l) => rule.deny.call.includes(l));
      if (denied.length === 0) continue;
      const earlier = rule.deny.after.map((l) => state.first.get(l));
      if (earlier.some((c) => c === undefined)) continue;
      const chain = [...new Map((earlier as FlowCall[]).map((c) => [c.callId, c])).values()].sort((a, b) => a.at - b.at);
      out.push({ flow: rule.name, mode: rule.mode ?? serverMode, labels: denied, chain });
    }
    return out;
  }

  /** Records a call the gateway let through. A call without labels only keeps the session alive. */
  record(session: string, call: FlowCall): void {
    this.sweep(call.at);
    let state = this.sessions.get(session);
    if (state === undefined) {
      if (call.labels.length === 0) return;
      state = { first: new Map(), calls: 0, lastSeen: call.at };
      if (this.sessions.size >= this.limits.maxSessions) {
        const oldest = this.sessions.keys().next().value;
        if (oldest !== undefined) this.sessions.delete(oldest);
      }
    } else {
      // Re-inserted so the map's order is least recently active first.
      this.sessions.delete(session);
    }
    state.calls += 1;
    state.lastSeen = call.at;
    for (const label of call.labels) if (!state.first.has(label)) state.first.set(label, call);
    this.sessions.set(session, state);
  }

  /** The session ended (the client closed it): its state goes with it. */
  endSession(session: string): void {
    this.sessions.delete(session);
  }

  private live(session: string, now: number): SessionState | undefined {
    const state = this.sessions.get(session);
    if (state === undefined) return undefined;
    if (now - state.lastSeen > this.limits.idleTtlMs) {
      this.sessions.delete(session);
      return undefined;
    }
    return state;
  }

  /** Drops idle sessions, oldest first, at most once per tenth of the idle limit. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.limits.idleTtlMs / 10) return;
    this.lastSweep = now;
    for (const [id, state] of this.sessions) {
      if (now - state.lastSeen <= this.limits.idleTtlMs) break;
      this.sessions.delete(id);
    }
  }
}

/** The labels a server's policy gives `tool`: those of every glob in `tools.labels` it matches, in declaration order. */
export function labelsOf(labels: Readonly<Record<string, readonly ToolLabel[]>> | undefined, tool: string): ToolLabel[] {
  if (labels === undefined) return [];
  const out = new Set<ToolLabel>();
  for (const [glob, list] of Object.entries(labels)) if (globMatches(glob, tool)) for (const l of list) out.add(l);
  return [...out];
}

/** `"github__read_private_issue" (reads-private)`, for messages. */
export function describeChain(chain: readonly FlowCall[], exposed: (server: string, tool: string) => string): string {
  return chain.map((c) => `${exposed(c.server, c.tool)} (${c.labels.join(", ")})`).join(", then ");
}
