import { readFile } from "node:fs/promises";
import * as z from "zod";
import { HangarError } from "../core/errors.js";
import type { NameAccounting, NameAccountingSnapshot } from "./name-accounting.js";
import type { ConnectionRate, ConnectionRateSnapshot } from "./proxy/connection-rate.js";

/**
 * The counts a restart must not reset: distinct names and their bits under each wildcard,
 * the upstream lookup budget, and connections per destination per minute. Without them a
 * sandbox that crashes its sidecar (or just waits for one to restart) gets fresh limits.
 * The sidecar reports them as a `counters` lifecycle event when they moved (at most once
 * per interval, and at exit); the control plane keeps the last and writes it to the file
 * the next process reads at start. No names are in it, only counts per wildcard.
 */
export interface CounterState {
  readonly v: 1;
  readonly names: NameAccountingSnapshot;
  readonly rates: ConnectionRateSnapshot;
}

const groups = z.record(z.string(), z.array(z.tuple([z.number().int().nonnegative(), z.number().int().min(1).max(1_000_000), z.number().nonnegative()])));
const CounterStateSchema = z.strictObject({
  v: z.literal(1),
  names: z.strictObject({ asked: groups, lookedUp: groups }),
  rates: z.record(z.string(), z.array(z.tuple([z.number().int().nonnegative(), z.number().int().min(1)]))),
});

export function isCounterState(value: unknown): value is CounterState {
  return CounterStateSchema.safeParse(value).success;
}

/** Reads a counters file: undefined when there is none, HANGAR_CONFIG_INVALID naming the file when it is not one. */
export async function readCounterState(file: string): Promise<CounterState | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new HangarError("HANGAR_CONFIG_INVALID", `counters file ${file}: ${(err as Error).message}`, { data: { file } });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HangarError("HANGAR_CONFIG_INVALID", `counters file ${file} is not JSON`, { data: { file } });
  }
  const result = CounterStateSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new HangarError("HANGAR_CONFIG_INVALID", `counters file ${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`, { data: { file } });
  }
  return result.data;
}

export interface CounterReporterOptions {
  readonly names: NameAccounting;
  readonly rate: ConnectionRate;
  readonly report: (state: CounterState) => void;
  /** Default 1000: at most this much counting is lost to a SIGKILL. */
  readonly intervalMs?: number;
}

/** Reports the counters when they moved: on a timer, and once more on flush() (exit, close). */
export class CounterReporter {
  private reported = -1;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CounterReporterOptions) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Reports now if anything was counted since the last report. Synchronous, so it can run in an exit handler. */
  flush(): void {
    const version = this.options.names.version + this.options.rate.version;
    if (version === this.reported) return;
    this.reported = version;
    this.options.report({ v: 1, names: this.options.names.snapshot(), rates: this.options.rate.snapshot() });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
