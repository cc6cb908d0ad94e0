import type { EgressEvent } from "../core/events.js";
import type { SandboxEvent } from "../runtime/sandbox-events.js";

/**
 * The sidecar's egress and DNS events of one server, kept in arrival order, bounded. Events
 * reach the host through the container's log stream a moment after they happen, so before
 * a run is folded the driver waits for the stream to go quiet.
 */
export const MAX_LOGGED_EVENTS = 200_000;

export class EventLog {
  private readonly kept: EgressEvent[] = [];
  private lastArrival: number;
  private droppedCount = 0;

  constructor(
    private readonly server: string,
    private readonly now: () => number = Date.now,
    private readonly limit = MAX_LOGGED_EVENTS,
  ) {
    this.lastArrival = now();
  }

  /** Give this to `Sandbox.start({ onEvent })`. */
  readonly onEvent = (event: SandboxEvent): void => {
    if ((event.type !== "egress" && event.type !== "dns") || event.server !== this.server) return;
    this.lastArrival = this.now();
    if (this.kept.length >= this.limit) {
      this.droppedCount += 1;
      return;
    }
    this.kept.push(event);
  };

  get events(): readonly EgressEvent[] {
    return this.kept;
  }

  /** Events past `limit`, not kept (a server flooding the sidecar). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Resolves once no event has arrived for `quietMs`, or after `maxMs` in any case. */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    const deadline = this.now() + maxMs;
    for (;;) {
      const now = this.now();
      const wait = Math.min(this.lastArrival + quietMs - now, deadline - now);
      if (wait <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
