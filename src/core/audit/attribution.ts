import type { AttributedCall } from "./audit-record.js";

/**
 * Attribution of egress to tool calls: an egress event of server S at time t belongs to
 * the calls of S that were in flight at t. Time is the event's own timestamp (the sidecar
 * and the host share a clock), so an event that reaches the gateway late is still
 * attributed correctly. A call stays eligible for `lingerMs` after it ends, because a
 * connection's `close` event, and traffic the server finishes after answering, come just
 * after the result. Several calls in flight on one server all get the event: the sidecar
 * cannot tell which of them opened the connection, and the log says so rather than guess.
 */
export interface CallInFlight extends AttributedCall {
  readonly server: string;
  /** Epoch ms. */
  readonly startedAt: number;
}

export interface InFlightCallsOptions {
  /** How long after its end a call still receives events. Default 1000 ms. */
  readonly lingerMs?: number;
  /** How long ended calls are kept for late events. Default 30 s. */
  readonly retainMs?: number;
}

interface Tracked {
  readonly call: CallInFlight;
  endedAt?: number;
}

export class InFlightCalls {
  private readonly byServer = new Map<string, Map<string, Tracked>>();
  /** Ended calls in the order they ended, so pruning touches only what expires: O(1) amortised per call. */
  private ended: { readonly server: string; readonly callId: string; readonly tracked: Tracked }[] = [];
  private endedHead = 0;
  private readonly lingerMs: number;
  private readonly retainMs: number;
  private latest = 0;

  constructor(options: InFlightCallsOptions = {}) {
    this.lingerMs = options.lingerMs ?? 1000;
    this.retainMs = Math.max(options.retainMs ?? 30_000, this.lingerMs);
  }

  begin(call: CallInFlight): void {
    this.seen(call.startedAt);
    let calls = this.byServer.get(call.server);
    if (calls === undefined) this.byServer.set(call.server, (calls = new Map()));
    calls.set(call.callId, { call });
  }

  end(callId: string, endedAt: number): void {
    this.seen(endedAt);
    for (const [server, calls] of this.byServer) {
      const tracked = calls.get(callId);
      if (tracked !== undefined && tracked.endedAt === undefined) {
        tracked.endedAt = endedAt;
        this.ended.push({ server, callId, tracked });
      }
    }
    this.prune();
  }

  /** The calls of `server` in flight at `at` (epoch ms), oldest first. */
  attribute(server: string, at: number): AttributedCall[] {
    this.seen(at);
    const calls = this.byServer.get(server);
    if (calls === undefined) return [];
    const out: AttributedCall[] = [];
    for (const { call, endedAt } of calls.values()) {
      if (call.startedAt > at) continue;
      if (endedAt !== undefined && endedAt + this.lingerMs < at) continue;
      out.push({ callId: call.callId, tool: call.tool, identity: call.identity, ...(call.session !== undefined ? { session: call.session } : {}) });
    }
    return out;
  }

  /** Calls currently tracked (in flight or retained), for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const calls of this.byServer.values()) n += calls.size;
    return n;
  }

  private seen(at: number): void {
    if (at > this.latest) this.latest = at;
  }

  private prune(): void {
    const horizon = this.latest - this.retainMs;
    while (this.endedHead < this.ended.length) {
      const next = this.ended[this.endedHead] as (typeof this.ended)[number];
      if ((next.tracked.endedAt ?? Number.POSITIVE_INFINITY) >= horizon) break;
      const calls = this.byServer.get(next.server);
      // Only if the id still maps to this call (an id reused after its end starts afresh).
      if (calls?.get(next.callId) === next.tracked) {
        calls.delete(next.callId);
        if (calls.size === 0) this.byServer.delete(next.server);
      }
      this.endedHead += 1;
    }
    if (this.endedHead > 1024 && this.endedHead * 2 > this.ended.length) {
      this.ended = this.ended.slice(this.endedHead);
      this.endedHead = 0;
    }
  }
}
