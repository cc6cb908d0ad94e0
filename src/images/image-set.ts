import type { Policy } from "../core/policy/policy-schema.js";
import type { BaseImageBuilder } from "./base-image-builder.js";
import type { BuiltImage, ProgressListener, ServerImage } from "./build-progress.js";
import type { ServerImageBuilder } from "./server-image-builder.js";
import type { SidecarImageBuilder } from "./sidecar-image-builder.js";

export interface ImageSetRequest {
  readonly policy: Policy;
  readonly policyFile: string;
  /** Tags from the runtime config (runtime.baseImage, runtime.sidecar.image). */
  readonly baseImage: string;
  readonly sidecarImage: string;
  readonly onProgress?: ProgressListener;
}

export interface ImageSetResult {
  readonly base: BuiltImage;
  readonly sidecar: BuiltImage;
  readonly server: ServerImage;
}

/**
 * Everything one sandbox needs: the base, then the sidecar and the server on it (in parallel),
 * each skipped when an image with the same content hash exists. What `hangar image
 * build` and `hangar run` ("builds what is missing") call.
 */
export class ImageSet {
  constructor(
    private readonly base: BaseImageBuilder,
    private readonly sidecar: SidecarImageBuilder,
    private readonly server: ServerImageBuilder,
  ) {}

  async ensure(request: ImageSetRequest): Promise<ImageSetResult> {
    const progress = request.onProgress ? { onProgress: request.onProgress } : {};
    const base = await this.base.ensure({ tag: request.baseImage, ...progress });
    // Both stand only on the base: checked (and built) side by side.
    const [sidecar, server] = await Promise.all([
      this.sidecar.ensure({ tag: request.sidecarImage, base: request.baseImage, ...progress }),
      this.server.build({ policy: request.policy, policyFile: request.policyFile, base: request.baseImage, ...progress }),
    ]);
    return { base, sidecar, server };
  }
}
