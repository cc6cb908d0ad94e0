import { stat } from "node:fs/promises";
import { join } from "node:path";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { BRIDGE_MCP_PATH } from "../bridge/bridge-args.js";
import { unixSocketFetch } from "../bridge/unix-socket-fetch.js";
import { secretValueReplacer } from "../core/audit/redaction.js";
import { HangarError, isHangarError } from "../core/errors.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { ServerImage } from "../images/build-progress.js";
import { EventChannel } from "../runtime/event-channel.js";
import { readLines } from "../runtime/json-lines.js";
import { ServerLogStore } from "../runtime/server-log-store.js";
import type { Sandbox } from "../runtime/sandbox.js";
import type { SandboxEvent } from "../runtime/sandbox-events.js";
import type { StartedSandbox } from "../runtime/started-sandbox.js";
import { ImagePreparer, type SandboxImages } from "./image-preparer.js";
import { ObservedTransport } from "./observed-transport.js";
import type { LaunchedServer, LaunchOptions, ServerLauncher, UpstreamEvent, UpstreamExit } from "./server-launcher.js";
import { StreamClientTransport } from "./stream-client-transport.js";
import { untilAborted } from "./until-aborted.js";

/**
 * Runs each server in its Docker sandbox (src/runtime): its images built or reused, an
 * internal network with no route out, the sidecar, the hardened server; MCP over the
 * server container's attached stdio (or, with runtime.transport http, streamable HTTP to the
 * stdio↔HTTP bridge the server runs under, through a Unix socket the host shares). The
 * sidecar's and the runtime's events are the launch's events, from the sandbox's first
 * moment, so egress during `initialize` is attributed too.
 *
 * What ends a launch (its `exited`): the server container stopping (a crash, `docker
 * kill`: its exit code), its stdio closing while the container lingers, losing track of
 * the container, or the sidecar given up after its restarts (the sandbox then has no
 * egress at all; a fresh sandbox is the way back). The gateway's supervisor turns any of
 * these into DEGRADED and a restart. A sidecar that merely restarted is only reported.
 */
export interface DockerLauncherDeps {
  /** ImageSet from createRuntimeServices, or anything with its `ensure`. */
  readonly images: SandboxImages;
  /** The runtime's Sandbox. */
  readonly sandboxes: Pick<Sandbox, "start">;
  /** Lines of the server's stderr kept for error messages. Default 20. */
  readonly stderrTailLines?: number;
  /** After the server's stdout ends, how long to wait for its container's exit code. Default 2000 ms. */
  readonly exitGraceMs?: number;
  /** runtime.transport http: how long the bridge gets to make its socket. Default 30000 ms. */
  readonly bridgeReadyTimeoutMs?: number;
}

const isSocket = (path: string): Promise<boolean> => stat(path).then((s) => s.isSocket(), () => false);

interface Instance {
  /** Its server is gone, or a stop was asked for: nothing of it is left to keep. */
  readonly ending: boolean;
  stop(): Promise<void>;
}

const MAX_STDERR_LINE = 1000;

export class DockerSandboxLauncher implements ServerLauncher {
  readonly kind = "docker";
  readonly sandboxed = true;
  private readonly preparer: ImagePreparer;
  private readonly tailLines: number;
  private readonly exitGraceMs: number;
  /** Per server: the launches that have not finished stopping. */
  private readonly instances = new Map<string, Set<Instance>>();
  /** Sandbox starts in progress, awaited by close(). */
  private readonly starting = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: DockerLauncherDeps) {
    this.preparer = new ImagePreparer(deps.images);
    this.tailLines = deps.stderrTailLines ?? 20;
    this.exitGraceMs = deps.exitGraceMs ?? 2000;
  }

  async launch(policy: Policy, options: LaunchOptions): Promise<LaunchedServer> {
    const { signal } = options;
    this.assertOpen();
    signal?.throwIfAborted();
    // One sandbox per server name on a host: a previous run must be gone before the next starts.
    await this.settlePrevious(policy.name);
    const image = await untilAborted(this.preparer.prepare({ policy, policyFile: options.policyFile, runtime: options.runtime, logger: options.logger }), signal);
    this.assertOpen();
    signal?.throwIfAborted();
    const started = this.startSandbox(policy, options, image);
    this.starting.add(started);
    try {
      const launched = await started;
      // Aborted while the sandbox was starting: the listener came too late to hear it.
      if (signal?.aborted === true || this.closing !== undefined) {
        await launched.stop().catch((err: unknown) => options.logger.warn({ err, server: policy.name }, "stopping an abandoned sandbox failed"));
        throw signal?.aborted === true ? (signal.reason as Error) : this.closedError();
      }
      return launched;
    } finally {
      this.starting.delete(started);
    }
  }

  /** Stops every sandbox this launcher started (and those still starting); later launches fail. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.starting]);
      const all = [...this.instances.values()].flatMap((set) => [...set]);
      await Promise.allSettled(all.map((i) => i.stop()));
    })();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw this.closedError();
  }

  private closedError(): HangarError {
    return new HangarError("HANGAR_CLOSED", "the Docker launcher is closed (the gateway is shutting down)");
  }

  /**
   * The supervisor stops a lost server before it restarts it, but the teardown may still be
   * running, and the runtime refuses a second sandbox of the same server (a conflict).
   */
  private async settlePrevious(server: string): Promise<void> {
    const previous = [...(this.instances.get(server) ?? [])];
    await Promise.allSettled(previous.filter((i) => i.ending).map((i) => i.stop()));
  }

  /**
   * runtime.transport http: the server runs under the stdio↔HTTP bridge, which makes its Unix
   * socket in a folder of the run that the host shares; MCP is streamable HTTP over it.
   */
  private async bridgeTransport(server: string, socket: string, serverExit: Promise<number>, tail: readonly string[], signal?: AbortSignal): Promise<Transport> {
    const timeoutMs = this.deps.bridgeReadyTimeoutMs ?? 30_000;
    let exited: number | undefined;
    void serverExit.then((code) => (exited = code), () => undefined);
    const deadline = Date.now() + timeoutMs;
    while (!(await isSocket(socket))) {
      signal?.throwIfAborted();
      const why = exited !== undefined ? `the server container exited with code ${exited}` : Date.now() > deadline ? `its bridge did not listen within ${timeoutMs} ms` : undefined;
      if (why !== undefined) {
        throw new HangarError("HANGAR_GATEWAY_LAUNCH_FAILED", `server ${JSON.stringify(server)}: ${why} (socket ${socket})${tail.length > 0 ? `; last stderr: ${tail.slice(-5).join(" | ")}` : ""}`, {
          data: { server, socket, ...(exited !== undefined ? { exitCode: exited } : {}) },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const inner = new StreamableHTTPClientTransport(new URL(`http://hangar-bridge${BRIDGE_MCP_PATH}`), { fetch: unixSocketFetch(socket) });
    await inner.start();
    return inner;
  }

  private async startSandbox(policy: Policy, options: LaunchOptions, image: ServerImage): Promise<LaunchedServer> {
    const { logger } = options;
    const channel = new EventChannel<SandboxEvent>();
    // Created now, so it buffers from the sandbox's first event until the gateway reads.
    const iterator = channel[Symbol.asyncIterator]();
    let sandbox: StartedSandbox;
    try {
      sandbox = await this.deps.sandboxes.start({
        policy,
        policyFile: options.policyFile,
        runtime: options.runtime,
        image,
        mode: options.mode,
        secretSource: options.secretSource,
        stateDir: options.stateDir,
        transport: options.runtime.runtime.transport,
        onEvent: (event) => channel.publish(event),
      });
    } catch (cause) {
      channel.close();
      if (isHangarError(cause)) throw cause;
      throw new HangarError("HANGAR_GATEWAY_LAUNCH_FAILED", `server ${JSON.stringify(policy.name)}: the sandbox did not start: ${(cause as Error).message}`, { cause, data: { server: policy.name } });
    }

    const secretValues = policy.server.secrets.map((name) => options.secretSource[name] ?? "").filter((v) => v !== "");
    const redact = secretValueReplacer(secretValues);
    const tail: string[] = [];
    // Kept for `hangar logs` (<stateDir>/logs), during the run and after it, as `hangar run` keeps it.
    const serverLog = await new ServerLogStore({ dir: join(options.stateDir, "logs") }).open(policy.name, sandbox.run).catch((err: unknown) => {
      logger.warn({ err, server: policy.name }, "the server's stderr will not be kept for hangar logs");
      return undefined;
    });
    readLines(sandbox.stderr, (raw) => {
      const line = redact(raw.slice(0, MAX_STDERR_LINE));
      serverLog?.write(line);
      logger.debug({ server: policy.name, line }, "server stderr");
      tail.push(line);
      if (tail.length > this.tailLines) tail.shift();
    });

    let stopping: Promise<void> | undefined;
    let gone = false;
    let resolveExit!: (exit: UpstreamExit) => void;
    const exited = new Promise<UpstreamExit>((resolve) => (resolveExit = resolve));
    const finish = (exit: Omit<UpstreamExit, "stderrTail">): void => {
      if (gone) return;
      gone = true;
      resolveExit({ ...exit, stderrTail: [...tail] });
    };
    sandbox.serverExit.then(
      (code) => finish({ code, reason: stopping !== undefined ? "stopped" : "exited" }),
      (err: unknown) => finish({ reason: `lost track of the server container: ${(err as Error).message}` }),
    );
    channel.subscribe((event) => {
      if (event.type === "runtime" && event.action === "sidecar-given-up") {
        finish({ reason: `its sidecar is gone for good after ${String(event.detail?.["restarts"] ?? "?")} restarts, so the sandbox has no egress` });
      }
    });

    let inner: Transport;
    try {
      inner = sandbox.mcpSocket === undefined ? new StreamClientTransport(sandbox.stdout, sandbox.stdin) : await this.bridgeTransport(policy.name, sandbox.mcpSocket, sandbox.serverExit, tail, options.signal);
    } catch (err) {
      await sandbox.stop().catch((e: unknown) => logger.warn({ err: e, server: policy.name }, "stopping a sandbox whose bridge never listened failed"));
      serverLog?.close();
      channel.close();
      throw err;
    }
    const transport = new ObservedTransport(inner, () => {
      if (stopping !== undefined) return;
      // Its stdout ended: the container is exiting (its code follows), or the attach broke.
      setTimeout(() => finish({ reason: "its stdio closed" }), this.exitGraceMs).unref();
    });
    if (sandbox.mcpSocket === undefined) await inner.start();

    const instances = this.instances.get(policy.name) ?? new Set<Instance>();
    this.instances.set(policy.name, instances);
    const onAbort = (): void => void stop().catch(() => undefined);
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        options.signal?.removeEventListener("abort", onAbort);
        try {
          await sandbox.stop();
        } finally {
          serverLog?.close();
          finish({ reason: "stopped" });
          channel.close();
          instances.delete(instance);
          if (instances.size === 0 && this.instances.get(policy.name) === instances) this.instances.delete(policy.name);
        }
      })());
    const instance: Instance = {
      get ending() {
        return gone || stopping !== undefined;
      },
      stop,
    };
    instances.add(instance);
    options.signal?.addEventListener("abort", onAbort, { once: true });

    logger.info({ server: policy.name, run: sandbox.run, network: sandbox.network.name, sidecar: sandbox.sidecarAddress, image: image.ref }, "sandbox ready");
    const events: AsyncIterable<UpstreamEvent> = { [Symbol.asyncIterator]: () => iterator };
    return {
      transport,
      events,
      exited,
      description: `sandbox ${policy.name} run ${sandbox.run} (sidecar ${sandbox.sidecarAddress})`,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }
}

