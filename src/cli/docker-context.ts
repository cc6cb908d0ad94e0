import Dockerode from "dockerode";
import type { Logger } from "pino";
import { isHangarError } from "../core/errors.js";
import type { ContainerEngine } from "../docker/container-engine.js";
import { createLogger } from "../log.js";
import { createRuntimeServices, type RuntimeServices } from "../runtime/runtime-services.js";
import { EXIT_USAGE, type CliIo } from "./command.js";

/**
 * The composition root of the Docker verbs (ps, stop, prune, events, image build): the one
 * Dockerode client, a logger on stderr, and the runtime services around them.
 */
export interface DockerContext {
  readonly docker: Dockerode;
  readonly logger: Logger;
  readonly services: RuntimeServices;
  readonly engine: ContainerEngine;
}

/** How a verb gets its context; tests pass their own to control the image builders. */
export type OpenDockerContext = (io: CliIo) => Promise<DockerContext>;

/** Connects to the engine named by DOCKER_HOST (default the local socket) and checks that it answers. */
export const openDockerContext: OpenDockerContext = async (io) => {
  const docker = new Dockerode();
  // Verbs print their own results; the log only says what went wrong.
  const logger = createLogger({ name: "hangar", level: io.env["HANGAR_LOG_LEVEL"] ?? "warn" });
  const services = createRuntimeServices({ docker, logger });
  await services.engine.ping();
  return { docker, logger, services, engine: services.engine };
};

const DEFAULT_SOCKET = "unix:///var/run/docker.sock";

/** The error code of the connection failure underneath a failed ping (ENOENT, ECONNREFUSED, EACCES, ...). */
function connectionCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * One line for an engine that does not answer, saying how to get one; undefined when the
 * error is something else.
 */
export function dockerUnavailableMessage(err: unknown, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (!isHangarError(err, "HANGAR_DOCKER") || err.data["action"] !== "ping") return undefined;
  const where = env["DOCKER_HOST"] ?? DEFAULT_SOCKET;
  const code = connectionCode(err);
  if (code === "EACCES" || code === "EPERM") {
    return `hangar: no permission to use the Docker engine at ${where}: run as root, or add your user to the "docker" group (sudo usermod -aG docker "$USER") and log in again`;
  }
  return (
    `hangar: no Docker engine is running at ${where} (${code ?? err.message}). ` +
    `Start one: "sudo systemctl start docker", or "sudo dockerd >/var/log/dockerd.log 2>&1 &" (Debian: apt-get install docker.io); ` +
    `or point DOCKER_HOST at a running engine`
  );
}

/** Opens the context and runs `verb` in it; an engine that does not answer is one line on stderr and exit 2. */
export async function withDocker(io: CliIo, open: OpenDockerContext, verb: (ctx: DockerContext) => Promise<number>): Promise<number> {
  let ctx: DockerContext;
  try {
    ctx = await open(io);
  } catch (err) {
    const line = dockerUnavailableMessage(err, io.env);
    if (line === undefined) throw err;
    io.err(`${line}\n`);
    return EXIT_USAGE;
  }
  return verb(ctx);
}

/** What the Docker verbs take, so tests can control the context and the clock. */
export interface DockerVerbDeps {
  readonly openContext?: OpenDockerContext;
  readonly now?: () => number;
}
