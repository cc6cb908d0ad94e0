import { join } from "node:path";
import type { ContainerEngine } from "../docker/container-engine.js";
import { runtimeError } from "../docker/runtime-error.js";
import { DEFAULT_BASE_IMAGE, type BuiltImage, type ProgressListener } from "./build-progress.js";
import { runCommand } from "./run-command.js";

export interface BaseImageOptions {
  readonly tag?: string;
  readonly onProgress?: ProgressListener;
  /** Rebuild even when an image for this node version exists. */
  readonly force?: boolean;
}

/**
 * hangar/base: the host's own node binary and its libraries, imported as an image by
 * images/base/build-base.sh (no registry needed). Rebuilt only when the node version
 * recorded on the image (label `hangar.node`) differs from the running one.
 */
export class BaseImageBuilder {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly packageRoot: string,
  ) {}

  async ensure(options: BaseImageOptions = {}): Promise<BuiltImage> {
    const tag = options.tag ?? DEFAULT_BASE_IMAGE;
    const report = (phase: "check" | "reuse" | "build" | "done", message: string): void =>
      options.onProgress?.({ image: tag, phase, message });
    report("check", `looking for ${tag} with node ${process.version}`);
    const existing = await this.engine.inspectImage(tag);
    if (existing !== undefined && existing.labels["hangar.node"] === process.version && options.force !== true) {
      report("reuse", `${tag} ${existing.id}`);
      return { ref: tag, id: existing.id, repoDigests: existing.repoDigests, reused: true };
    }
    report("build", "importing the host's node binary and libraries");
    await runCommand("bash", [join(this.packageRoot, "images/base/build-base.sh"), tag], {
      errorCode: "HANGAR_IMAGE_BUILD",
      onLine: (line) => report("build", line),
    });
    const built = await this.engine.inspectImage(tag);
    if (built === undefined) throw runtimeError("HANGAR_IMAGE_BUILD", `images/base/build-base.sh finished but ${tag} is missing`);
    report("done", `${tag} ${built.id}`);
    return { ref: tag, id: built.id, repoDigests: built.repoDigests, reused: false };
  }
}
