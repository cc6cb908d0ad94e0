import { rename, writeFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { AttachedStdio, ContainerEngine } from "../docker/container-engine.js";
import { runtimeError } from "../docker/runtime-error.js";
import { readLines } from "./json-lines.js";
import { asSidecarEvent, runtimeEvent, type SandboxEvent } from "./sandbox-events.js";

export interface SidecarSupervisorOptions {
  readonly engine: ContainerEngine;
  readonly containerId: string;
  readonly server: string;
  /** The sandbox network and the sidecar's fixed address on it. */
  readonly network: string;
  readonly address: string;
  readonly readyTimeoutMs: number;
  readonly maxRestarts: number;
  readonly logger: Logger;
  readonly publish: (event: SandboxEvent) => void;
  readonly now: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Written to the sidecar's stdin at every start (the sandbox CA for TLS inspection): it never
   * lands in a file, an env value or a label. The container must keep stdin open.
   */
  readonly stdinLine?: string;
  /**
   * Host path of the file the sidecar reads its counters from at start (inside its policy
   * folder). The supervisor keeps the last `counters` event and writes it there before each
   * restart, so a crash never resets the rate and tunnelling limits.
   */
  readonly countersFile?: string;
  /** Runs after each restart, before it counts as done: a restarted container has a new netns to set up again (runtime.catchAll). */
  readonly afterRestart?: () => Promise<void>;
  /** Called once the first launch's container runs (its netns exists), before it is ready. */
  readonly onContainerStarted?: () => void;
}

const TAIL_LINES = 20;
/** Once the sidecar has exited, how long its attach stream may take to deliver what it wrote last. */
const FLUSH_WAIT_MS = 250;

/** Resolves when `stream` ends or closes, or after `capMs`. */
function endOf(stream: Readable, capMs: number): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      stream.off("end", done).off("close", done);
      resolve();
    };
    const timer = setTimeout(done, capMs);
    stream.once("end", done).once("close", done);
  });
}

/**
 * Runs the sidecar container: attaches before each start (so no event line is missed),
 * waits for its `started` event, streams its events, and restarts it when it dies.
 * While it is down the server has no egress at all: its only route is the sidecar.
 */
export class SidecarSupervisor {
  private stopping = false;
  private attached: AttachedStdio | undefined;
  private onStarted: (() => void) | undefined;
  private readonly stderrTail: string[] = [];
  private restartCount = 0;
  private watching: Promise<void> = Promise.resolve();
  private counters: Readonly<Record<string, unknown>> | undefined;

  constructor(private readonly options: SidecarSupervisorOptions) {}

  get restarts(): number {
    return this.restartCount;
  }

  async start(): Promise<void> {
    await this.launch();
    this.watch();
  }

  /** Stops the container (SIGTERM: the sidecar drains) and stops restarting it. Idempotent. */
  async stop(timeoutSeconds: number): Promise<void> {
    this.stopping = true;
    await this.options.engine.stopContainer(this.options.containerId, timeoutSeconds);
    // The drain's last event lines (its close events) may still be on their way down the attach stream.
    if (this.attached !== undefined) await endOf(this.attached.stdout, FLUSH_WAIT_MS);
    this.attached?.close();
    await this.watching;
  }

  /** Asks the sidecar to re-read its policy. */
  async reload(): Promise<void> {
    await this.options.engine.killContainer(this.options.containerId, "SIGHUP");
  }

  private async launch(): Promise<void> {
    const { engine, containerId, logger } = this.options;
    this.attached?.close();
    const io = await engine.attach(containerId, { stdin: this.options.stdinLine !== undefined });
    this.attached = io;
    readLines(io.stdout, (line) => this.onStdoutLine(line), {
      onOversize: (bytes) => logger.warn({ bytes }, "sidecar event line too long; dropped"),
    });
    readLines(io.stderr, (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > TAIL_LINES) this.stderrTail.shift();
      logger.debug({ sidecar: this.options.server, line }, "sidecar log");
    });

    const started = new Promise<void>((resolve) => (this.onStarted = resolve));
    await engine.startContainer(containerId);
    if (this.restartCount === 0) this.options.onContainerStarted?.();
    if (this.options.stdinLine !== undefined) io.stdin?.write(`${this.options.stdinLine}\n`);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      started.then(() => "ready" as const),
      engine.waitContainer(containerId).then((code) => ({ exited: code })),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.options.readyTimeoutMs))),
    ]).finally(() => clearTimeout(timer));
    this.onStarted = undefined;
    if (outcome === "ready") return;
    if (outcome === "timeout") await engine.stopContainer(containerId, 1);
    const why = outcome === "timeout" ? `no "started" event within ${this.options.readyTimeoutMs} ms` : `it exited with code ${outcome.exited}`;
    const logs = this.stderrTail.join(" | ") || "(none)";
    throw runtimeError("HANGAR_SIDECAR_NOT_READY", `sidecar of ${this.options.server} did not start: ${why}. Last log lines: ${logs}`, {
      data: { server: this.options.server, stderr: [...this.stderrTail] },
    });
  }

  private onStdoutLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.options.logger.warn({ sidecar: this.options.server }, "sidecar wrote a non-JSON line on stdout; dropped");
      return;
    }
    const event = asSidecarEvent(parsed);
    if (event === undefined) {
      this.options.logger.warn({ sidecar: this.options.server }, "sidecar wrote a line that is not an event; dropped");
      return;
    }
    if (event.type === "lifecycle" && event.action === "counters") {
      // Kept for the next start, not published: counts, not something that happened.
      this.counters = event.detail;
      return;
    }
    if (event.type === "lifecycle" && event.action === "started") this.onStarted?.();
    this.options.publish(event);
  }

  private watch(): void {
    this.watching = this.options.engine.waitContainer(this.options.containerId).then(
      (code) => this.onExit(code),
      (err: unknown) => this.options.logger.error({ err }, "lost track of the sidecar container"),
    );
  }

  private async onExit(exitCode: number): Promise<void> {
    if (this.stopping) return;
    const { publish, server, now, logger } = this.options;
    publish(runtimeEvent(server, "sidecar-exited", now(), { exitCode, restarts: this.restartCount, stderr: [...this.stderrTail.slice(-5)] }));
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    while (!this.stopping) {
      if (this.restartCount >= this.options.maxRestarts) {
        publish(runtimeEvent(server, "sidecar-given-up", now(), { restarts: this.restartCount }));
        return;
      }
      this.restartCount += 1;
      await sleep(Math.min(200 * 2 ** (this.restartCount - 1), 5_000));
      if (this.stopping) return;
      if ((await this.options.engine.inspectContainer(this.options.containerId)) === undefined) {
        // Removed from outside (prune, a successor reaping orphans): nothing left to restart.
        publish(runtimeEvent(server, "sidecar-given-up", now(), { restarts: this.restartCount, reason: "container removed" }));
        return;
      }
      try {
        await this.handOverCounters();
        await this.launch();
        await this.verifyAddress();
        await this.options.afterRestart?.();
        publish(runtimeEvent(server, "sidecar-restarted", now(), { restarts: this.restartCount, address: this.options.address }));
        this.watch();
        return;
      } catch (err) {
        logger.warn({ err, server }, "sidecar restart failed");
        publish(runtimeEvent(server, "sidecar-restart-failed", now(), { restarts: this.restartCount, error: (err as Error).message }));
      }
    }
  }

  /** Writes the last counts the sidecar reported where the restarted one reads them (whole or not at all). */
  private async handOverCounters(): Promise<void> {
    const file = this.options.countersFile;
    if (file === undefined || this.counters === undefined) return;
    const partial = `${file}.${process.pid}.tmp`;
    await writeFile(partial, JSON.stringify(this.counters), { mode: 0o644 });
    await rename(partial, file);
  }

  /** The server's DNS and proxy settings name this address; a sidecar elsewhere must not serve. */
  private async verifyAddress(): Promise<void> {
    const info = await this.options.engine.inspectContainer(this.options.containerId);
    const address = info?.addresses[this.options.network];
    if (address !== this.options.address) {
      await this.options.engine.stopContainer(this.options.containerId, 1);
      throw runtimeError("HANGAR_SIDECAR_NOT_READY", `restarted sidecar came back at ${address ?? "no address"}, not ${this.options.address}`);
    }
  }
}
