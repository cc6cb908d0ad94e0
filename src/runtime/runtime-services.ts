import { join } from "node:path";
import type Dockerode from "dockerode";
import type { Logger } from "pino";
import type { ContainerEngine } from "../docker/container-engine.js";
import { DockerContainerEngine } from "../docker/docker-container-engine.js";
import { BaseImageBuilder } from "../images/base-image-builder.js";
import { ImageSet } from "../images/image-set.js";
import { NpmCliClient, type NpmClient } from "../images/npm-client.js";
import { NpmStager } from "../images/npm-stager.js";
import { hangarPackageRoot } from "../images/package-root.js";
import { ServerImageBuilder } from "../images/server-image-builder.js";
import { SidecarImageBuilder } from "../images/sidecar-image-builder.js";
import { ProcessOwnerWatchdog, type OwnerWatchdog } from "./owner-watchdog.js";
import { Pruner } from "./pruner.js";
import { Sandbox } from "./sandbox.js";

export interface RuntimeServicesOptions {
  /** The one Dockerode client; the process's composition root builds it. */
  readonly docker: Dockerode;
  readonly logger: Logger;
  /** Where images/ and dist/ live; default this package. */
  readonly packageRoot?: string;
  /** Where npm packages are staged; default `<packageRoot>/.stage/npm`. */
  readonly npmStageDir?: string;
  readonly npm?: NpmClient;
  readonly now?: () => number;
  /** What removes a sandbox whose owner dies without stopping it; default a detached watchdog process per sandbox. */
  readonly watchdog?: OwnerWatchdog;
}

export interface RuntimeServices {
  readonly engine: ContainerEngine;
  readonly images: ImageSet;
  readonly baseImages: BaseImageBuilder;
  readonly sidecarImages: SidecarImageBuilder;
  readonly serverImages: ServerImageBuilder;
  readonly sandboxes: Sandbox;
  readonly pruner: Pruner;
}

/** Wires the Docker adapter, the image builders and the sandbox runtime around one injected client. */
export function createRuntimeServices(options: RuntimeServicesOptions): RuntimeServices {
  const root = options.packageRoot ?? hangarPackageRoot();
  const engine = new DockerContainerEngine(options.docker);
  const baseImages = new BaseImageBuilder(engine, root);
  const sidecarImages = new SidecarImageBuilder(engine, root);
  const stager = new NpmStager(options.npm ?? new NpmCliClient(), options.npmStageDir ?? join(root, ".stage/npm"));
  const serverImages = new ServerImageBuilder(engine, root, stager);
  return {
    engine,
    images: new ImageSet(baseImages, sidecarImages, serverImages),
    baseImages,
    sidecarImages,
    serverImages,
    sandboxes: new Sandbox({
      engine,
      logger: options.logger,
      watchdog: options.watchdog ?? new ProcessOwnerWatchdog(options.logger),
      ...(options.now ? { now: options.now } : {}),
    }),
    pruner: new Pruner(engine),
  };
}
