import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import type { ReasonCode } from "../../core/decision.js";

/**
 * What one sidecar may hold at once, shared by every listener (the composition root makes
 * one): a cap on live client connections and a memory budget. Past either, a new connection
 * is refused at once, before any byte is read or any name resolved, so a flood from inside
 * the sandbox costs a counter check and never takes the process to its cgroup limit.
 *
 * At the cap a new connection first displaces the oldest live one that has carried no byte
 * either way (a silent flood connection, typically still waiting out its peek): so a flood of
 * silent connections churns itself and the sandbox's real requests still get in. Only when
 * every live connection has carried bytes is the new one refused.
 *
 * Refusals are reported, but at most `refusalEventsPerSecond` of them; the rest are counted
 * and the count rides on the next report, so a flood cannot flood the event stream either.
 */
export interface ConnectionBudgetOptions {
  /** Live client connections across all listeners. Default 1024. */
  readonly maxConnections?: number;
  /** Refuse new connections while resident memory is above this many bytes. Default: no memory check. */
  readonly memoryHighWaterBytes?: number;
  /** Reads resident memory (bytes). Default process.memoryUsage.rss. */
  readonly rss?: () => number;
  /** How often memory is sampled. Default 500 ms: a connection pays for a flag check, not a syscall. */
  readonly memorySampleMs?: number;
  readonly refusalEventsPerSecond?: number;
  readonly now: () => number;
}

export type BudgetRefusal = Extract<ReasonCode, "connection-cap" | "memory-budget">;

export type Admission =
  | { readonly kind: "admitted" }
  /** Admitted in place of `displaced`, a silent connection the caller destroys (after reporting it). */
  | { readonly kind: "displaced"; readonly displaced: Socket }
  | { readonly kind: "refused"; readonly reason: BudgetRefusal };

const ADMITTED: Admission = { kind: "admitted" };

/** A refusal to report, or undefined when this one is only counted. */
export interface RefusalReport {
  readonly reason: BudgetRefusal;
  /** Refusals not reported since the last report. */
  readonly suppressed: number;
  readonly detail: string;
}

export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_REFUSAL_EVENTS_PER_SECOND = 20;
/** Refuse new work at this share of the memory budget, leaving room to finish what is live. */
export const MEMORY_HIGH_WATER_FRACTION = 0.8;

export class ConnectionBudget {
  readonly maxConnections: number;
  private live = 0;
  /** Live sockets in arrival order: the candidates for displacement, oldest first. */
  private readonly arrivals = new Set<Socket>();
  private overMemory = false;
  private readonly sampler: NodeJS.Timeout | undefined;
  private readonly perSecond: number;
  private windowStart = -Infinity;
  private reportedInWindow = 0;
  private suppressed = 0;
  private refusedTotal = 0;

  constructor(private readonly options: ConnectionBudgetOptions) {
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.perSecond = options.refusalEventsPerSecond ?? DEFAULT_REFUSAL_EVENTS_PER_SECOND;
    const high = options.memoryHighWaterBytes;
    if (high !== undefined) {
      const rss = options.rss ?? (() => process.memoryUsage.rss());
      const sample = (): void => {
        this.overMemory = rss() > high;
      };
      sample();
      this.sampler = setInterval(sample, options.memorySampleMs ?? 500);
      this.sampler.unref();
    }
  }

  /** Live client connections right now. */
  get connections(): number {
    return this.live;
  }

  /** Connections refused so far. */
  get refused(): number {
    return this.refusedTotal;
  }

  /**
   * Counts `socket` in until it closes, possibly in place of a silent one, or refuses it:
   * then the caller drops it. Either way the caller reports what {@link report} returns.
   */
  admit(socket: Socket): Admission {
    if (this.overMemory) return this.refuse("memory-budget");
    let displaced: Socket | undefined;
    if (this.live >= this.maxConnections) {
      displaced = this.oldestSilent();
      if (displaced === undefined) return this.refuse("connection-cap");
      this.arrivals.delete(displaced);
    }
    this.live++;
    this.arrivals.add(socket);
    socket.once("close", () => {
      this.live--;
      this.arrivals.delete(socket);
    });
    return displaced === undefined ? ADMITTED : { kind: "displaced", displaced };
  }

  private refuse(reason: BudgetRefusal): Admission {
    this.refusedTotal++;
    return { kind: "refused", reason };
  }

  /**
   * Read lazily, only at the cap: a socket that has carried a byte leaves the candidates for
   * good, so the scan is paid once per socket, never per chunk.
   */
  private oldestSilent(): Socket | undefined {
    for (const s of this.arrivals) {
      if (s.destroyed) continue;
      if (s.bytesRead === 0 && s.bytesWritten === 0) return s;
      this.arrivals.delete(s);
    }
    return undefined;
  }

  /** Whether this refusal gets an event (rate-limited), with the count of those that did not. */
  report(reason: BudgetRefusal, displaced = false): RefusalReport | undefined {
    const now = this.options.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.reportedInWindow = 0;
    }
    if (this.reportedInWindow >= this.perSecond) {
      this.suppressed++;
      return undefined;
    }
    this.reportedInWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    const what = reason === "connection-cap" ? `${this.live} live connections, cap ${this.maxConnections}` : `memory above ${this.options.memoryHighWaterBytes ?? 0} bytes`;
    const verb = displaced ? "displaced the oldest silent connection" : "refused";
    return { reason, suppressed, detail: `${verb}: ${what}${suppressed > 0 ? `; ${suppressed} more not reported` : ""}` };
  }

  close(): void {
    if (this.sampler !== undefined) clearInterval(this.sampler);
  }
}

// A cgroup v1 "no limit" reads as a huge page-aligned number; anything past this is no limit.
const UNLIMITED = 2 ** 50;

/** The memory limit of the cgroup this process runs in (v2, then v1), or undefined. */
export async function cgroupMemoryLimit(read: (file: string) => Promise<string> = (f) => readFile(f, "utf8")): Promise<number | undefined> {
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    const text = await read(file).catch(() => undefined);
    if (text === undefined) continue;
    const value = Number(text.trim());
    if (Number.isFinite(value) && value > 0 && value < UNLIMITED) return value;
    return undefined; // "max" or unlimited
  }
  return undefined;
}
