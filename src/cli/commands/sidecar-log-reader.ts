import type { ContainerEngine } from "../../docker/container-engine.js";
import { readLines } from "../../runtime/json-lines.js";
import { asSidecarEvent } from "../../runtime/sandbox-events.js";
import type { SidecarEvent } from "../../core/events.js";

/**
 * Reads a sidecar's events from its container log (it writes one JSON event per line on
 * stdout). Following survives sidecar restarts: when the log stream ends because the
 * container stopped, it waits for the container to run again and resumes exactly after
 * the last line it saw, by the log's own timestamps.
 */

export interface ReadSidecarEventsOptions {
  readonly follow: boolean;
  /** Only events at or after this instant (ISO-8601). */
  readonly since?: string;
  /** Ends the reading (SIGINT). */
  readonly signal?: AbortSignal;
  /** `raw` is the line exactly as the sidecar wrote it. */
  readonly onEvent: (event: SidecarEvent, raw: string) => void;
  /** Following, the sidecar stopped or came back. */
  readonly onPause?: (state: "stopped" | "running") => void;
  readonly pollMs?: number;
}

export type ReadEnd = "end" | "aborted" | "removed";

const MAX_LINE = 256 * 1024;

/** "2024-05-01T08:16:25.123456789Z" → Docker's `since` for the instant one nanosecond later. */
export function sinceAfter(stamp: string): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(stamp);
  if (m === null) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  let nanos = Number((m[2] ?? "").padEnd(9, "0")) + 1;
  let whole = seconds;
  if (nanos >= 1e9) {
    whole += 1;
    nanos -= 1e9;
  }
  return `${whole}.${String(nanos).padStart(9, "0")}`;
}

/** An ISO instant as Docker's `since`, rounded down to the second (the exact cut is made on the events' `ts`). */
export function sinceFromIso(iso: string): string {
  return String(Math.floor(Date.parse(iso) / 1000));
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

export async function readSidecarEvents(engine: ContainerEngine, containerId: string, options: ReadSidecarEventsOptions): Promise<ReadEnd> {
  const { signal } = options;
  // A function, not a narrowed property: the signal fires while we await.
  const aborted = (): boolean => signal?.aborted === true;
  const sinceMs = options.since !== undefined ? Date.parse(options.since) : undefined;
  let cursor = options.since !== undefined ? sinceFromIso(options.since) : undefined;

  const onLine = (line: string): void => {
    // With timestamps, Docker prefixes each line with its RFC 3339 instant and a space.
    const space = line.indexOf(" ");
    if (space === -1) return;
    cursor = sinceAfter(line.slice(0, space)) ?? cursor;
    const raw = line.slice(space + 1);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return;
    }
    const event = asSidecarEvent(parsed);
    if (event === undefined) return;
    if (sinceMs !== undefined && !(Date.parse(event.ts) >= sinceMs)) return;
    options.onEvent(event, raw);
  };

  for (;;) {
    if (aborted()) return "aborted";
    let logs;
    try {
      logs = await engine.logs(containerId, { follow: options.follow, timestamps: true, ...(cursor !== undefined ? { since: cursor } : {}) });
    } catch (err) {
      // Removed between the listing and now (a concurrent stop or prune).
      if ((await engine.inspectContainer(containerId)) === undefined) return "removed";
      throw err;
    }
    // Nobody reads the sidecar's stderr here; drain it so it never holds stdout back.
    logs.stderr.resume();
    const close = (): void => logs.close();
    signal?.addEventListener("abort", close, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        readLines(logs.stdout, onLine, { maxLine: MAX_LINE });
        logs.stdout.once("end", resolve);
        logs.stdout.once("close", resolve);
        logs.stdout.once("error", reject);
      });
    } finally {
      signal?.removeEventListener("abort", close);
      logs.close();
    }
    if (aborted()) return "aborted";
    if (!options.follow) return "end";
    // The stream ended because the sidecar stopped; its supervisor may bring it back.
    const state = await waitForRunning(engine, containerId, options);
    if (state !== "running") return state;
  }
}

async function waitForRunning(engine: ContainerEngine, containerId: string, options: ReadSidecarEventsOptions): Promise<"running" | ReadEnd> {
  let announced = false;
  for (;;) {
    if (options.signal?.aborted === true) return "aborted";
    const info = await engine.inspectContainer(containerId);
    if (info === undefined) return "removed";
    if (info.running) {
      if (announced) options.onPause?.("running");
      return "running";
    }
    if (!announced) {
      options.onPause?.("stopped");
      announced = true;
    }
    await sleep(options.pollMs ?? 500, options.signal);
  }
}
