import type { AttributedEgressEvent } from "../core/baseline/observation.js";
import { timestampMs } from "../core/baseline/observation.js";
import type { EgressEvent } from "../core/events.js";

/**
 * Which tool calls were in flight when: the driver begins and ends each call, then every
 * sidecar event is attributed by its own timestamp (the sidecar and the host share a clock,
 * so an event that arrives late is still placed right). A call keeps receiving events for
 * `lingerMs` after its result, because a connection's `close` and traffic the server
 * finishes after answering come just after; the linger stops where the next call begins,
 * so a driver that calls one at a time never attributes an event to two calls. Pure.
 */
export interface CallWindow {
  readonly tool: string;
  /** Epoch ms, inclusive. */
  readonly startedAt: number;
  /** Epoch ms; undefined while in flight. */
  readonly endedAt?: number;
}

export const DEFAULT_LINGER_MS = 250;

export class CallTimeline {
  private readonly windows: { tool: string; startedAt: number; endedAt?: number }[] = [];

  constructor(private readonly lingerMs = DEFAULT_LINGER_MS) {}

  /** Returns the call's handle, for `end`. */
  begin(tool: string, at: number): number {
    this.windows.push({ tool, startedAt: at });
    return this.windows.length - 1;
  }

  end(handle: number, at: number): void {
    const w = this.windows[handle];
    if (w !== undefined && w.endedAt === undefined) w.endedAt = Math.max(at, w.startedAt);
  }

  get calls(): readonly CallWindow[] {
    return this.windows;
  }

  /** The tools of the calls in flight at `at`, in call order (a tool called twice at once appears once). */
  toolsAt(at: number): string[] {
    const tools: string[] = [];
    for (const w of this.windows) {
      if (w.startedAt > at || at > this.reach(w)) continue;
      if (!tools.includes(w.tool)) tools.push(w.tool);
    }
    return tools;
  }

  /** The handles of the calls in flight at `at` (`begin`'s return values), in call order. */
  callsAt(at: number): number[] {
    const handles: number[] = [];
    for (const [handle, w] of this.windows.entries()) if (w.startedAt <= at && at <= this.reach(w)) handles.push(handle);
    return handles;
  }

  /**
   * The event with its attribution. A `close` takes the attribution of its `decide` (same
   * id) when that was seen: bytes belong to whoever opened the connection.
   */
  attribute(event: EgressEvent, decided?: ReadonlyMap<string, readonly string[]>): AttributedEgressEvent {
    const opened = event.phase === "close" ? decided?.get(event.id) : undefined;
    const ms = timestampMs(event.ts);
    const tools = opened ?? (ms === undefined ? [] : this.toolsAt(ms));
    return { ...event, attribution: { tools: [...tools] } };
  }

  /** Attributes a whole stream (any order). */
  attributeAll(events: readonly EgressEvent[]): AttributedEgressEvent[] {
    const decided = new Map<string, readonly string[]>();
    for (const e of events) {
      if (e.phase !== "decide") continue;
      const ms = timestampMs(e.ts);
      decided.set(e.id, ms === undefined ? [] : this.toolsAt(ms));
    }
    return events.map((e) => this.attribute(e, decided));
  }

  /** The last moment a call still receives events. */
  private reach(w: { startedAt: number; endedAt?: number }): number {
    if (w.endedAt === undefined) return Number.POSITIVE_INFINITY;
    let reach = w.endedAt + this.lingerMs;
    for (const other of this.windows) {
      if (other !== w && other.startedAt >= w.endedAt && other.startedAt <= reach) reach = Math.min(reach, other.startedAt - 1);
    }
    return Math.max(reach, w.endedAt);
  }
}
