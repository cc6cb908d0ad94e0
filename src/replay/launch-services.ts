import type { Logger } from "pino";
import type { Policy } from "../core/policy/policy-schema.js";
import type { ProgressListener, ServerImage } from "../images/build-progress.js";
import type { RuntimeConfig } from "../runtime/runtime-config.js";
import type { RuntimeServices } from "../runtime/runtime-services.js";
import type { Sandbox } from "../runtime/sandbox.js";
import type { Tracing } from "../telemetry/tracing.js";

/**
 * What the scenario verbs (baseline record, replay, quarantine) need from the runtime: the
 * operator's config, a way to get the server's image, and the sandbox starter. The CLI
 * builds it from its composition root; tests build one around their own images.
 */
export interface LaunchServices {
  readonly config: RuntimeConfig;
  readonly logger: Logger;
  readonly sandboxes: Pick<Sandbox, "start">;
  /** Builds whatever is missing (base, sidecar, server) and returns the server's image. */
  prepareImages(request: { readonly policy: Policy; readonly policyFile: string; readonly onProgress?: ProgressListener }): Promise<ServerImage>;
  /** Fixed run id and state folder (tests label and clean up by them); default random and the OS temp folder. */
  readonly run?: string;
  readonly stateDir?: string;
  /** A span per run and per scenario call, with the egress under the call; default none. */
  readonly tracing?: Tracing;
}

/** The CLI's runtime context (openRuntimeContext) as launch services. */
export function launchServicesFrom(ctx: { readonly config: RuntimeConfig; readonly services: RuntimeServices; readonly logger: Logger }): LaunchServices {
  const { runtime } = ctx.config;
  return {
    config: ctx.config,
    logger: ctx.logger,
    sandboxes: ctx.services.sandboxes,
    prepareImages: async ({ policy, policyFile, onProgress }) => {
      const images = await ctx.services.images.ensure({
        policy,
        policyFile,
        baseImage: runtime.baseImage,
        sidecarImage: runtime.sidecar.image,
        ...(onProgress ? { onProgress } : {}),
      });
      return images.server;
    },
  };
}
