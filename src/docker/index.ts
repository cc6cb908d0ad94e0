export type {
  AttachedStdio,
  BuildSpec,
  ContainerEngine,
  ContainerInfo,
  ContainerLogs,
  ContainerSpec,
  ContainerStatus,
  EndpointSpec,
  ImageInfo,
  LabelQuery,
  LogOptions,
  MountSpec,
  NetworkInfo,
  NetworkSpec,
  NetworkSubnet,
  ResourceLimits,
  VolumeInfo,
} from "./container-engine.js";
export { DockerContainerEngine } from "./docker-container-engine.js";
export {
  hangarLabels,
  matchesSelector,
  selectorTerms,
  LABEL_CONTENT,
  LABEL_MANAGED,
  LABEL_OWNER,
  LABEL_ROLE,
  LABEL_RUN,
  LABEL_SERVER,
  SHARED,
  type HangarRole,
  type LabelInput,
  type Labels,
  type LabelSelector,
} from "./labels.js";
export { assertIsolationAvailable, chooseIsolation, GVISOR_OCI_RUNTIME, ociRuntimeFor, resolvConfFor, type IsolationChoice } from "./isolation.js";
export { hasRuntimeCode, runtimeError, type RuntimeErrorCode } from "./runtime-error.js";
export { StdioDemuxer } from "./stdio-demuxer.js";
