import type { Policy } from "../../../src/core/policy/policy-schema.js";
import type { EgressEvent } from "../../../src/core/events.js";
import { LocalProcessLauncher } from "../../../src/gateway/local-process-launcher.js";
import type { LaunchedServer, LaunchOptions, ServerLauncher, UpstreamEvent } from "../../../src/gateway/server-launcher.js";

/**
 * The local launcher plus a sidecar stand-in: the test pushes the events a sidecar would
 * report (the launcher is the true boundary here; the Docker runtime's own tests cover
 * real sidecars). Events go to the server's current launch, as a sandbox's would.
 */
export class EventInjectingLauncher implements ServerLauncher {
  readonly kind = "local-process+events";
  readonly sandboxed = false;
  private readonly inner = new LocalProcessLauncher();
  private readonly queues = new Map<string, AsyncQueue<UpstreamEvent>>();

  async launch(policy: Policy, options: LaunchOptions): Promise<LaunchedServer> {
    const launched = await this.inner.launch(policy, options);
    const queue = new AsyncQueue<UpstreamEvent>();
    this.queues.set(policy.name, queue);
    void launched.exited.then(() => queue.end());
    return { ...launched, events: queue, stop: launched.stop, [Symbol.asyncDispose]: launched.stop };
  }

  emit(server: string, event: EgressEvent): void {
    const queue = this.queues.get(server);
    if (queue === undefined) throw new Error(`server ${server} was never launched`);
    queue.push(event);
  }
}

export function egressEvent(server: string, overrides: Partial<EgressEvent> = {}): EgressEvent {
  return {
    v: 1,
    ts: new Date().toISOString(),
    id: `e-${Math.random().toString(16).slice(2)}`,
    type: "egress",
    phase: "decide",
    server,
    verdict: "allow",
    reasons: ["declared-host"],
    name: "api.allowed.test",
    port: 443,
    protocol: "tls",
    path: "transparent",
    sni: "api.allowed.test",
    ...overrides,
  } as EgressEvent;
}

class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async () => {
        while (this.items.length === 0 && !this.ended) await new Promise<void>((r) => (this.wake = r));
        if (this.items.length > 0) return { value: this.items.shift() as T, done: false };
        return { value: undefined, done: true };
      },
    };
  }
}
