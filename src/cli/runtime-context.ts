import Dockerode from "dockerode";
import type { Logger } from "pino";
import { HangarError } from "../core/errors.js";
import { createLogger } from "../log.js";
import { createRuntimeServices, loadRuntimeConfig, type RuntimeConfig, type RuntimeServices } from "../runtime/index.js";
import type { CliIo } from "./command.js";

/**
 * The control plane's composition root for CLI verbs that touch Docker: one Dockerode
 * client, the runtime services around it, the runtime config, and a logger on stderr.
 */
export interface RuntimeContext {
  readonly config: RuntimeConfig;
  readonly services: RuntimeServices;
  readonly logger: Logger;
}

export async function openRuntimeContext(options: { configFile?: string; io: CliIo }): Promise<RuntimeContext> {
  const config = await loadRuntimeConfig(options.configFile);
  const level = options.io.env["HANGAR_LOG_LEVEL"] ?? "warn";
  const logger = createLogger({ name: "hangar", level });
  const docker = new Dockerode();
  try {
    await docker.ping();
  } catch (cause) {
    throw new HangarError(
      "HANGAR_DOCKER",
      `no Docker engine answers (${(cause as Error).message}); start one (as root on Debian: bash scripts/ensure-docker.sh)`,
      { cause },
    );
  }
  return { config, services: createRuntimeServices({ docker, logger }), logger };
}
