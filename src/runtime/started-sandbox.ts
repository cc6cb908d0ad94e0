import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import { HangarError } from "../core/errors.js";
import type { AttachedStdio, ContainerEngine } from "../docker/container-engine.js";
import { LABEL_MANAGED } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import type { EventChannel } from "./event-channel.js";
import { runtimeEvent, type SandboxEvent } from "./sandbox-events.js";
import type { SandboxSubnet } from "./subnet-allocator.js";
import type { OwnerWatch } from "./owner-watchdog.js";
import type { SidecarSupervisor } from "./sidecar-supervisor.js";

export interface SandboxParts {
  readonly server: string;
  readonly run: string;
  readonly network: { readonly id: string; readonly name: string } & SandboxSubnet;
  readonly egressNetwork: string;
  readonly sidecarId: string;
  readonly serverId: string;
  readonly stdio: AttachedStdio;
  readonly supervisor: SidecarSupervisor;
  readonly events: EventChannel<SandboxEvent>;
  /** Host folder mounted read-only into the sidecar at /etc/hangar. */
  readonly policyDir: string;
  /** The operator's policy file the copy was made from. */
  readonly policyFile: string;
  /** runtime.transport http: the host path of the bridge's Unix socket (there once the bridge listens). */
  readonly mcpSocket?: string;
  /** Removes the sandbox if this process dies before stop(); released by stop(). */
  readonly watch?: OwnerWatch;
  /** At stop, also remove the egress network if Hangar created it and nothing else uses it (the last one out). */
  readonly removeEgressWhenUnused?: boolean;
  /** The server started without its CPU quota (runtime.startCpuBoostMs): set to `nanoCpus` after `ms`. */
  readonly cpuBoost?: { readonly nanoCpus: number; readonly ms: number };
}

/** After EOF on its stdin, how long the server gets to send its last answers and exit by itself. */
export const SERVER_EOF_GRACE_MS = 300;
/**
 * How long the sidecar gets to drain after SIGTERM (flushing its close events) before Docker
 * kills it. With the server gone its connections are closed, so it needs milliseconds.
 */
export const SIDECAR_STOP_SECONDS = 1;

/**
 * A running sandbox: the server's stdio as Node streams (wrap them in an MCP transport),
 * the sidecar's events, and an idempotent stop. `await using` disposes it.
 */
export class StartedSandbox implements AsyncDisposable {
  readonly server: string;
  readonly run: string;
  readonly network: SandboxParts["network"];
  readonly egressNetwork: string;
  readonly sidecarId: string;
  readonly serverId: string;
  /** Resolves with the server's exit code when its container stops (for any reason). */
  readonly serverExit: Promise<number>;
  /**
   * Resolves once the server runs under its CPU quota: at once without a start-up boost, else
   * when the boost ends. If the quota cannot be set the server is killed (never left unbounded).
   */
  readonly cpuLimited: Promise<void>;
  private boostTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly parts: SandboxParts,
    private readonly engine: ContainerEngine,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.server = parts.server;
    this.run = parts.run;
    this.network = parts.network;
    this.egressNetwork = parts.egressNetwork;
    this.sidecarId = parts.sidecarId;
    this.serverId = parts.serverId;
    this.serverExit = engine.waitContainer(parts.serverId).then((code) => {
      if (this.stopping === undefined) parts.events.publish(runtimeEvent(this.server, "server-exited", this.now(), { exitCode: code }));
      return code;
    });
    // Nobody may be awaiting it; a failed wait must not become an unhandled rejection.
    this.serverExit.catch(() => undefined);
    this.cpuLimited = parts.cpuBoost === undefined ? Promise.resolve() : this.endBoost(parts.cpuBoost);
  }

  private endBoost(boost: { readonly nanoCpus: number; readonly ms: number }): Promise<void> {
    return new Promise<void>((resolveLimit) => {
      this.boostTimer = setTimeout(() => {
        this.boostTimer = undefined;
        this.engine
          .updateCpuLimit(this.serverId, boost.nanoCpus)
          .catch(async (err: unknown) => {
            if (this.stopping !== undefined) return;
            this.logger.error({ err, server: this.server, run: this.run }, "could not set the server's CPU quota after its start-up boost; killing it");
            this.parts.events.publish(runtimeEvent(this.server, "cpu-limit-failed", this.now(), { run: this.run }));
            await this.engine.killContainer(this.serverId, "SIGKILL").catch(() => undefined);
          })
          .finally(resolveLimit);
      }, boost.ms);
      // The quota is moot once the sandbox stops; the timer must not hold the process either.
      this.boostTimer.unref();
    });
  }

  /** The server's stdin: write MCP messages here; end() closes it (the server sees EOF). */
  get stdin(): Writable {
    const stdin = this.parts.stdio.stdin;
    if (stdin === undefined) throw new HangarError("HANGAR_CLOSED", "the server's stdin is not attached");
    return stdin;
  }

  get stdout(): Readable {
    return this.parts.stdio.stdout;
  }

  get stderr(): Readable {
    return this.parts.stdio.stderr;
  }

  get sidecarAddress(): string {
    return this.parts.network.sidecar;
  }

  get serverAddress(): string {
    return this.parts.network.server;
  }

  /** runtime.transport http: the host path of the server's MCP endpoint (the bridge's Unix socket); undefined for stdio. */
  get mcpSocket(): string | undefined {
    return this.parts.mcpSocket;
  }

  get sidecarRestarts(): number {
    return this.parts.supervisor.restarts;
  }

  /** Sidecar and runtime events from now on, until stop. */
  events(): AsyncIterable<SandboxEvent> {
    return { [Symbol.asyncIterator]: () => this.parts.events[Symbol.asyncIterator]() };
  }

  /** Returns the unsubscribe function. */
  onEvent(listener: (event: SandboxEvent) => void): () => void {
    return this.parts.events.subscribe(listener);
  }

  /**
   * Replaces the policy the sidecar reads (with `policyText`, or a fresh copy of the policy
   * file) and signals it (SIGHUP). The sidecar reports `reloaded` or `reload-failed`; a
   * policy it rejects leaves the old one in force. Live connections keep their verdicts.
   */
  async reloadPolicy(policyText?: string): Promise<void> {
    if (this.stopping !== undefined) throw new HangarError("HANGAR_CLOSED", `sandbox ${this.server} is stopped`);
    const text = policyText ?? (await readFile(this.parts.policyFile));
    await writeFile(join(this.parts.policyDir, "policy.yaml"), text, { mode: 0o644 });
    await this.parts.supervisor.reload();
  }

  /**
   * Quick, and nothing the sidecar recorded is lost: closes the server's stdin and gives it
   * SERVER_EOF_GRACE_MS to exit by itself, then removes it (a kill: its client is gone, so
   * nothing it could still say has a reader) while the sidecar drains on SIGTERM; then the
   * sidecar and the network go. Well under a second. Safe to call any number of times.
   */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * The egress network is shared by every sandbox and created on demand: the last one out
   * removes it, only if Hangar made it (an operator's own network is never touched). Docker
   * refuses while anything is attached, so a sandbox starting meanwhile keeps it.
   */
  private async removeEgressIfUnused(): Promise<void> {
    const { engine } = this;
    const network = await engine.inspectNetwork(this.egressNetwork).catch(() => undefined);
    if (network === undefined || network.containers.length > 0) return;
    if (network.labels[LABEL_MANAGED] !== "true" || network.labels["hangar.network"] !== "egress") return;
    await engine.removeNetwork(network.id).catch((err: unknown) => this.logger.debug({ err, network: this.egressNetwork }, "egress network still in use"));
  }

  private async teardown(): Promise<void> {
    const { parts, engine } = this;
    clearTimeout(this.boostTimer);
    parts.stdio.stdin?.end();
    const errors: unknown[] = [];
    const attempt = async (what: string, op: () => Promise<unknown>): Promise<void> => {
      try {
        await op();
      } catch (err) {
        errors.push(err);
        this.logger.warn({ err, server: this.server, what }, "sandbox teardown step failed");
      }
    };
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([this.serverExit.catch(() => undefined), new Promise<void>((r) => (graceTimer = setTimeout(r, SERVER_EOF_GRACE_MS)))]);
    clearTimeout(graceTimer);
    // In parallel: the sidecar's drain ends as soon as the server's connections are cut.
    await Promise.all([
      attempt("remove server", () => engine.removeContainer(parts.serverId)),
      attempt("stop sidecar", () => parts.supervisor.stop(SIDECAR_STOP_SECONDS)),
    ]);
    parts.stdio.close();
    await attempt("remove sidecar", () => engine.removeContainer(parts.sidecarId));
    await Promise.all([
      attempt("remove network", () => engine.removeNetwork(parts.network.id)),
      attempt("remove policy folder", () => rm(parts.policyDir, { recursive: true, force: true })),
      parts.removeEgressWhenUnused === true ? this.removeEgressIfUnused() : undefined,
    ]);
    parts.events.publish(runtimeEvent(this.server, "sandbox-stopped", this.now()));
    parts.events.close();
    parts.watch?.release();
    if (errors.length > 0) {
      throw runtimeError("HANGAR_DOCKER", `sandbox ${this.server}: ${errors.length} teardown step(s) failed`, { cause: new AggregateError(errors) });
    }
  }
}
