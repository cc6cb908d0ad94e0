import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import Dockerode from "dockerode";
import type { Logger } from "pino";
import { HangarError } from "../../core/errors.js";
import { DockerSandboxLauncher } from "../../gateway/docker-launcher.js";
import { HttpEndpoint } from "../../gateway/http-endpoint.js";
import type { SandboxImages } from "../../gateway/image-preparer.js";
import { loadHangarConfig } from "../../gateway/config/load-hangar-config.js";
import { LocalProcessLauncher } from "../../gateway/local-process-launcher.js";
import { openGateway } from "../../gateway/open-gateway.js";
import type { ServerLauncher } from "../../gateway/server-launcher.js";
import { serveStdio } from "../../gateway/stdio-endpoint.js";
import { TokenStore } from "../../gateway/token-file.js";
import { chooseLogFormat, createLogger, type LogFormat } from "../../log.js";
import { openTracing } from "../../telemetry/open-tracing.js";
import { formatIssues } from "../../policy/index.js";
import { createRuntimeServices, type RuntimeServices } from "../../runtime/runtime-services.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { dockerUnavailableMessage } from "../docker-context.js";
import { CONFIG_OPTION, DEFAULT_CONFIG, packageVersion } from "./gateway-options.js";

/**
 * `hangar serve`: the governed MCP endpoint. The process-facing parts (stdio streams,
 * signals, the launcher) come from a ServeHost, so tests can run the command in-process.
 */
export interface ServeHost {
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Calls `stop` on every SIGINT/SIGTERM until unsubscribed; returns the unsubscribe function. */
  onShutdown(stop: () => void): () => void;
  /** The launcher for this run: Docker sandboxes, or plain local processes with --unsandboxed. */
  openLauncher(options: LauncherOptions): Promise<OpenedLauncher>;
  /** Without a format: pretty on a terminal, JSON elsewhere. */
  logger(options?: { readonly format?: LogFormat }): Logger;
  readonly version: string;
}

export interface LauncherOptions {
  /** --unsandboxed. */
  readonly unsandboxed: boolean;
  readonly logger: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface OpenedLauncher {
  readonly launcher: ServerLauncher;
  /** Stops whatever the launcher still runs (after the gateway closed). */
  close(): Promise<void>;
}

/** A developer's knob: build the sidecar image from this compiled output instead of the package's dist/. */
export const SIDECAR_DIST_ENV = "HANGAR_SIDECAR_DIST";

export const UNSANDBOXED_WARNING =
  "hangar: WARNING: --unsandboxed: servers run as plain local processes with your user's rights: " +
  "no sandbox, no network isolation, no egress policy, no sidecar events. Development and tests only.\n";

export function processServeHost(version = packageVersion()): ServeHost {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    onShutdown: (stop) => {
      // `on`, not `once`: a second signal during shutdown is absorbed too (SIGKILL still forces).
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      return () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      };
    },
    openLauncher: async ({ unsandboxed, logger, env }) => {
      if (unsandboxed) return { launcher: new LocalProcessLauncher(), close: async () => undefined };
      // The control plane's one Dockerode client.
      const services = createRuntimeServices({ docker: new Dockerode(), logger });
      try {
        await services.engine.ping();
      } catch (cause) {
        const why = (dockerUnavailableMessage(cause, env) ?? (cause as Error).message).replace(/^hangar: /, "");
        throw new HangarError(
          "HANGAR_DOCKER",
          `${why}. hangar serve runs every server in a Docker sandbox; --unsandboxed runs them as plain local processes instead (development only: no isolation, no egress enforcement)`,
          { cause },
        );
      }
      const sidecarDist = env[SIDECAR_DIST_ENV];
      const launcher = new DockerSandboxLauncher({ images: sidecarDist !== undefined ? imagesWithSidecarFrom(services, resolve(sidecarDist)) : services.images, sandboxes: services.sandboxes });
      return { launcher, close: () => launcher.close() };
    },
    // Logs go to stderr: on stdio, stdout carries MCP and nothing else.
    logger: (options) => {
      const tty = process.stderr.isTTY;
      return createLogger({ name: "hangar-gateway", format: options?.format ?? chooseLogFormat(undefined, {}, tty), colour: tty });
    },
    version,
  };
}

/** ImageSet.ensure, with the sidecar built from `distDir` (a checkout run through tsx has no dist/). */
function imagesWithSidecarFrom(services: RuntimeServices, distDir: string): SandboxImages {
  return {
    ensure: async (request) => {
      const progress = request.onProgress !== undefined ? { onProgress: request.onProgress } : {};
      const base = await services.baseImages.ensure({ tag: request.baseImage, ...progress });
      const sidecar = await services.sidecarImages.ensure({ tag: request.sidecarImage, base: request.baseImage, distDir, ...progress });
      const server = await services.serverImages.build({ policy: request.policy, policyFile: request.policyFile, base: request.baseImage, ...progress });
      return { base, sidecar, server };
    },
  };
}

/** --log-format or HANGAR_LOG_FORMAT, checked; undefined leaves the choice to the host (is stderr a terminal?). */
function explicitLogFormat(option: string | undefined, env: Readonly<Record<string, string | undefined>>): LogFormat | undefined {
  if (option === undefined && (env["HANGAR_LOG_FORMAT"] ?? "") === "") return undefined;
  try {
    return chooseLogFormat(option, env, false);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) throw usageError(`--http ${JSON.stringify(text)}: expected <host>:<port>, such as 127.0.0.1:8080 (port 0 picks a free one)`);
  return { host: m[1] ?? m[2] ?? "", port };
}

export function createServeCommand(host: ServeHost = processServeHost()): Command {
  return defineCommand({
    name: "serve",
    summary: "Serve one governed MCP endpoint over every configured server",
    usage: "hangar serve [--config <file>] [--stdio | --http <host:port>] [--unsandboxed] [--log-format json|pretty]",
    description:
      "Serves MCP over stdio (default; the caller is hangar.yaml's identity) or streamable HTTP\n" +
      "(every request needs Authorization: Bearer <token>; see 'hangar token create'), with\n" +
      "the tools, prompts and resources of every server in hangar.yaml as <server>__<name>.\n" +
      "Servers start on first use, only when approved ('hangar approve'); every call is checked\n" +
      "against RBAC and the server's policy, and audited. HTTP also serves /metrics.\n" +
      "Each server runs in its Docker sandbox (images are built on first use, as by 'hangar image\n" +
      "build'); --unsandboxed runs them as plain local processes instead, for development only.",
    options: {
      config: CONFIG_OPTION,
      stdio: { type: "boolean", description: "Serve on stdin/stdout (the default)." },
      http: { type: "string", valueName: "<host:port>", description: "Serve streamable HTTP at http://<host:port>/mcp instead." },
      unsandboxed: { type: "boolean", description: "DEVELOPMENT ONLY: run servers as plain local processes (server.command): no sandbox, no egress enforcement." },
      "log-format": { type: "string", valueName: "<json|pretty>", description: "How logs print on stderr (default $HANGAR_LOG_FORMAT, else pretty on a terminal and JSON lines elsewhere)." },
    },
    positionals: { max: 0 },
    details:
      "Exit status: 0 after a clean shutdown (stdin closed, SIGINT or SIGTERM), 1 when the configuration is invalid, 2 on a usage error or failure.\n" +
      `Environment: HANGAR_LOG_LEVEL (default info; logs go to stderr), HANGAR_LOG_FORMAT (json or pretty, as --log-format), OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables (OpenTelemetry traces; off when unset), ${SIDECAR_DIST_ENV}=<dir> builds the sidecar image from that compiled output instead of dist/.`,
    async run({ values }, io) {
      if (values.stdio === true && values.http !== undefined) throw usageError("--stdio and --http exclude each other");
      const listen = values.http !== undefined ? parseHostPort(values.http) : undefined;
      const logFormat = explicitLogFormat(values["log-format"], io.env);
      const loaded = await loadHangarConfig(values.config ?? DEFAULT_CONFIG);
      if (!loaded.ok) {
        io.err(formatIssues(loaded.issues));
        return EXIT_FINDING;
      }
      io.err(formatIssues(loaded.warnings));
      const { config } = loaded;
      const unsandboxed = values.unsandboxed === true;
      if (unsandboxed) io.err(UNSANDBOXED_WARNING);
      const logger = host.logger(logFormat !== undefined ? { format: logFormat } : {});
      // Off (and the SDK never loaded) unless OTEL_* settings ask for traces.
      const tracing = await openTracing({ env: io.env, logger, version: host.version });
      const launched = await host.openLauncher({ unsandboxed, logger, env: io.env });
      let opened: Awaited<ReturnType<typeof openGateway>>;
      try {
        opened = await openGateway({ config, launcher: launched.launcher, logger, version: host.version, tracing });
      } catch (err) {
        await launched.close();
        await tracing.shutdown();
        throw err;
      }
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const unsubscribe = host.onShutdown(() => stop());
      try {
        if (listen === undefined) {
          const stdio = await serveStdio(opened.gateway, { identity: config.identity, stdin: host.stdin, stdout: host.stdout, version: host.version, logger });
          await Promise.race([stdio.done, stopped]);
          await stdio.stop();
        } else {
          const tokens = new TokenStore(config.paths.tokens);
          await tokens.load();
          if (tokens.size === 0) io.err(`hangar: warning: ${config.paths.tokens} holds no tokens, so every request gets 401; create one with: hangar token create --identity <id>\n`);
          const http = new HttpEndpoint({ gateway: opened.gateway, tokens, metrics: opened.metrics, metricsPublic: config.metrics.public, audit: opened.audit, version: host.version, logger });
          const url = await http.listen(listen.host, listen.port);
          opened.setEndpoint({ kind: "http", url });
          const base = url.replace(/\/mcp$/, "");
          io.err(`hangar: serving MCP on ${url} (metrics at ${base}/metrics${config.metrics.public ? ", without a token" : ""}; probes at ${base}/healthz and ${base}/readyz)\n`);
          await stopped;
          await http.close();
        }
      } finally {
        // Still subscribed: a client's SIGTERM after closing stdin (the SDK sends one after 2 s)
        // must not kill the process halfway through removing the sandboxes.
        try {
          await opened.close();
        } finally {
          await launched.close();
          await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, "exporting the last traces failed"));
          unsubscribe();
        }
      }
      return EXIT_OK;
    },
  });
}

export const serveCommand = createServeCommand();
