export { BaseImageBuilder, type BaseImageOptions } from "./base-image-builder.js";
export {
  DEFAULT_BASE_IMAGE,
  DEFAULT_SIDECAR_IMAGE,
  type BuildProgress,
  type BuiltImage,
  type ProgressListener,
  type ServerImage,
} from "./build-progress.js";
export { contentHash, type HashInput } from "./content-hash.js";
export { ImageSet, type ImageSetRequest, type ImageSetResult } from "./image-set.js";
export { NpmCliClient, type NpmClient, type RegistryPackage } from "./npm-client.js";
export { NpmStager, type NpmStageRequest, type StagedPackage } from "./npm-stager.js";
export { hangarPackageRoot } from "./package-root.js";
export { ServerImageBuilder, npmEntrypoint, type ServerImageRequest } from "./server-image-builder.js";
export { SidecarImageBuilder, type SidecarImageOptions } from "./sidecar-image-builder.js";
