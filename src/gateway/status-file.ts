import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "pino";
import type { FleetStatus } from "./fleet-status.js";

/**
 * `.hangar/status.json`: the serving process rewrites it (temp file + rename, so readers
 * never see half of one) every `intervalMs` while the content changes, and once more on
 * shutdown with `stoppedAt`. `hangar status` reads it, and tells a live gateway from a
 * dead one by the pid. Chosen over the audit log because uptime, breaker state and
 * in-flight calls are live values the log does not hold, and because aggregating a large
 * log on every `status` would be slow.
 */
export class StatusFileWriter {
  private timer: NodeJS.Timeout | undefined;
  private last = "";
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly snapshot: () => FleetStatus,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await this.write();
    this.timer = setInterval(() => void this.write(), this.intervalMs);
    this.timer.unref();
  }

  /** Writes the final status (with stoppedAt) and stops. */
  async stop(final: (status: FleetStatus) => FleetStatus = (s) => s): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
    await this.write(final);
  }

  private write(transform: (status: FleetStatus) => FleetStatus = (s) => s): Promise<void> {
    this.writing = this.writing.then(async () => {
      const status = transform(this.snapshot());
      // updatedAt changes every time; compare the rest so an idle fleet is not rewritten.
      const comparable = JSON.stringify({ ...status, updatedAt: "", servers: status.servers.map((s) => ({ ...s, uptimeMs: 0 })) });
      if (comparable === this.last) return;
      this.last = comparable;
      const temp = join(dirname(this.path), `.${basename(this.path)}.${randomBytes(4).toString("hex")}.tmp`);
      try {
        await writeFile(temp, `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
        await rename(temp, this.path);
      } catch (err) {
        await rm(temp, { force: true });
        this.logger.warn({ err, path: this.path }, "cannot write the status file");
      }
    });
    return this.writing;
  }
}

export type StatusRead = { readonly ok: true; readonly status: FleetStatus; readonly running: boolean } | { readonly ok: false; readonly message: string };

export async function readStatusFile(path: string, isAlive: (pid: number) => boolean = pidAlive): Promise<StatusRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    return { ok: false, message: missing ? `no status file at ${path}: no gateway has run with this configuration yet (start one with hangar serve)` : `cannot read ${path}: ${(err as Error).message}` };
  }
  try {
    const status = JSON.parse(text) as FleetStatus;
    if (status.version !== 1 || !Array.isArray(status.servers)) throw new Error("not a Hangar status file");
    return { ok: true, status, running: status.stoppedAt === undefined && isAlive(status.pid) };
  } catch (err) {
    return { ok: false, message: `${path}: ${(err as Error).message}` };
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
