import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { Logger } from "pino";
import type { SidecarEvent } from "../core/events.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import type { RuntimeConfig } from "../runtime/runtime-config.js";

/**
 * The seam between the gateway and whatever runs a server. The gateway only ever sees an
 * MCP transport, a stream of events and an exit signal; how the server runs (a Docker
 * sandbox behind a sidecar, or, for tests and development, a plain child process) is the
 * launcher's business: DockerSandboxLauncher (docker-launcher.ts) runs each server in its
 * sandbox from src/runtime; LocalProcessLauncher runs plain processes, for tests only.
 */
export interface ServerLauncher {
  /** Shown in status and logs, e.g. "docker", "local-process". */
  readonly kind: string;
  /** False for launchers that run servers without a sandbox; the gateway warns loudly. */
  readonly sandboxed: boolean;
  /**
   * Starts the server described by `policy`. Resolves once it runs and its transport can
   * be connected; rejects with a HangarError (HANGAR_GATEWAY_LAUNCH_FAILED, or the
   * runtime's own codes) when it cannot start. Must honour `options.signal`: when aborted,
   * stop whatever was started and reject.
   */
  launch(policy: Policy, options: LaunchOptions): Promise<LaunchedServer>;
}

export interface LaunchOptions {
  /** The policy file on the host (absolute): relative paths in it resolve against its folder. */
  readonly policyFile: string;
  /** hangar.yaml's runtime settings, in the runtime's own type. */
  readonly runtime: RuntimeConfig;
  /** The policy's egress mode, or an override (quarantine, replay). */
  readonly mode: Mode;
  /** Where secret values are read from (the policy names them; values never reach a log). */
  readonly secretSource: Readonly<Record<string, string | undefined>>;
  /** A folder the launcher may use for per-run state. */
  readonly stateDir: string;
  readonly logger: Logger;
  /** Aborted when the gateway stops waiting (start timeout, shutdown). */
  readonly signal?: AbortSignal;
}

/** What the runtime reports about a sandbox that the sidecar cannot (its own death, restarts). */
export interface UpstreamRuntimeEvent {
  readonly v: 1;
  readonly ts: string;
  readonly type: "runtime";
  readonly server: string;
  readonly action: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** Sidecar events (egress, dns, lifecycle) and runtime events, in the order they happened. */
export type UpstreamEvent = SidecarEvent | UpstreamRuntimeEvent;

export interface UpstreamExit {
  /** Process exit code or container exit code, when known. */
  readonly code?: number | null;
  readonly signal?: string | null;
  /** "exited", "stopped" (by stop()), "transport closed", ... */
  readonly reason: string;
  /** The last lines the server wrote to stderr, for error messages (never secrets: the launcher redacts). */
  readonly stderrTail?: readonly string[];
}

export interface LaunchedServer extends AsyncDisposable {
  /**
   * The MCP transport to the server's stdio. The gateway connects an SDK Client to it, which
   * calls start(); start() must therefore be idempotent if the launcher started it itself.
   */
  readonly transport: Transport;
  /** The sidecar's and runtime's events from launch until stop; may be empty (and end at once). */
  readonly events: AsyncIterable<UpstreamEvent>;
  /** Resolves (never rejects) when the server is gone, for whatever reason, stop() included. */
  readonly exited: Promise<UpstreamExit>;
  /** One line for status and logs: "local process pid 4242 (UNSANDBOXED)", "sandbox everything run 3f2a". */
  readonly description: string;
  /** Stops the server and frees everything the launch created. Idempotent. */
  stop(): Promise<void>;
}
