import type { Logger } from "pino";
import { loadRuntimeConfig, type RuntimeConfig, type RuntimeServices } from "../runtime/index.js";
import type { CliIo } from "./command.js";
import { openDockerContext } from "./docker-context.js";

/**
 * What verbs that start sandboxes need (run, baseline record, replay, quarantine): the
 * Docker context plus the runtime section of hangar.yaml. The config is read first, so a
 * broken file is reported before Docker is contacted.
 */
export interface RuntimeContext {
  readonly config: RuntimeConfig;
  readonly services: RuntimeServices;
  readonly logger: Logger;
}

export async function openRuntimeContext(options: { configFile?: string; io: CliIo }): Promise<RuntimeContext> {
  const config = await loadRuntimeConfig(options.configFile);
  const docker = await openDockerContext(options.io);
  return { config, services: docker.services, logger: docker.logger };
}
