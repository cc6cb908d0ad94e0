import { join } from "node:path";
import type { ContainerEngine } from "../docker/container-engine.js";
import { runtimeError } from "../docker/runtime-error.js";
import type { BuiltImage, ProgressListener } from "./build-progress.js";
import { runCommand } from "./run-command.js";

export const DEFAULT_NETNS_IMAGE = "hangar/netns:local";

/**
 * hangar/netns: the host's own `ip` and `nft` and their libraries, imported as an image by
 * images/netns/build-netns.sh. Only runtime.catchAll uses it (src/runtime/sandbox-gateway.ts).
 * Built once; an existing image is reused.
 */
export class NetnsImageBuilder {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly packageRoot: string,
  ) {}

  async ensure(options: { readonly tag?: string; readonly force?: boolean; readonly onProgress?: ProgressListener } = {}): Promise<BuiltImage> {
    const tag = options.tag ?? DEFAULT_NETNS_IMAGE;
    const report = (phase: "check" | "reuse" | "build" | "done", message: string): void => options.onProgress?.({ image: tag, phase, message });
    const existing = await this.engine.inspectImage(tag);
    if (existing !== undefined && options.force !== true) {
      report("reuse", `${tag} ${existing.id}`);
      return { ref: tag, id: existing.id, repoDigests: existing.repoDigests, reused: true };
    }
    report("build", "importing the host's ip and nft and their libraries");
    await runCommand("bash", [join(this.packageRoot, "images/netns/build-netns.sh"), tag], { errorCode: "HANGAR_IMAGE_BUILD", onLine: (line) => report("build", line) });
    const built = await this.engine.inspectImage(tag);
    if (built === undefined) throw runtimeError("HANGAR_IMAGE_BUILD", `images/netns/build-netns.sh finished but ${tag} is missing`);
    report("done", `${tag} ${built.id}`);
    return { ref: tag, id: built.id, repoDigests: built.repoDigests, reused: false };
  }
}
