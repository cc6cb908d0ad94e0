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
    for (const calls of this.byServer.values()) {
      const tracked = calls.get(callId);
      if (tracked !== undefined) tracked.endedAt = endedAt;
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
    for (const [server, calls] of this.byServer) {
      for (const [id, tracked] of calls) if (tracked.endedAt !== undefined && tracked.endedAt < horizon) calls.delete(id);
      if (calls.size === 0) this.byServer.delete(server);
    }
  }
}
