import type { Logger } from "pino";
import { policyDigest } from "../core/gateway/source-pins.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { BuildProgress, ServerImage } from "../images/build-progress.js";
import type { ImageSetRequest } from "../images/image-set.js";
import type { RuntimeConfig } from "../runtime/runtime-config.js";

/** What the launcher needs of the image builders: ImageSet fits. */
export interface SandboxImages {
  ensure(request: ImageSetRequest): Promise<{ readonly server: ServerImage }>;
}

export interface ImageRequest {
  readonly policy: Policy;
  readonly policyFile: string;
  readonly runtime: RuntimeConfig;
  readonly logger: Logger;
}

/**
 * Builds (or finds) what one sandbox needs, one build at a time: two servers starting
 * together must not build the shared sidecar image twice, and two builds of one tag race
 * to replace it. A build in progress is shared by every launch of the same policy, and it
 * keeps going when the launch that asked for it gives up (a start timeout), so the restart
 * after it finds the image ready instead of starting over. Finished builds are not cached:
 * checking that an image is current is cheap, and an image pruned meanwhile is rebuilt.
 */
export class ImagePreparer {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Map<string, Promise<ServerImage>>();

  constructor(private readonly images: SandboxImages) {}

  prepare(request: ImageRequest): Promise<ServerImage> {
    const { policy, policyFile, runtime } = request;
    const key = [policyFile, policyDigest(policy), runtime.runtime.baseImage, runtime.runtime.sidecar.image].join("\n");
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const build = this.tail.then(async () => {
      const result = await this.images.ensure({
        policy,
        policyFile,
        baseImage: runtime.runtime.baseImage,
        sidecarImage: runtime.runtime.sidecar.image,
        onProgress: (p) => logProgress(request.logger, policy.name, p),
      });
      return result.server;
    });
    this.tail = build.catch(() => undefined);
    this.inFlight.set(key, build);
    const forget = (): void => {
      if (this.inFlight.get(key) === build) this.inFlight.delete(key);
    };
    // Also the rejection handler of a build nobody awaits any more.
    build.then(forget, forget);
    return build;
  }
}

/** One info line per step (reuse, stage, build, done); the npm and docker build output at debug. */
function logProgress(logger: Logger, server: string, p: BuildProgress): void {
  const fields = { server, image: p.image, phase: p.phase };
  const output = p.phase === "install" || (p.phase === "build" && !p.message.startsWith("docker build "));
  if (output) logger.debug(fields, p.message);
  else logger.info(fields, `image ${p.phase}: ${p.message}`);
}
