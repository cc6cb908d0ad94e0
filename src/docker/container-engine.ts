import type { Readable, Writable } from "node:stream";
import type { Labels } from "./labels.js";

/**
 * The narrow slice of a container engine Hangar needs, in Hangar's own types. The
 * dockerode implementation sits beside it (docker-container-engine.ts); nothing outside
 * src/docker sees a dockerode type.
 */

/** Label terms (`key=value`) an object must carry; see selectorTerms(). */
export interface LabelQuery {
  readonly labels?: readonly string[];
}

export interface NetworkSpec {
  readonly name: string;
  readonly labels: Labels;
  /** No route out of the network (Docker `Internal`). */
  readonly internal: boolean;
  /** Bridge driver options, e.g. `com.docker.network.bridge.inhibit_ipv4`. */
  readonly driverOptions?: Readonly<Record<string, string>>;
  /** CIDR; without it the engine picks one. Static container addresses need it. */
  readonly subnet?: string;
  readonly gateway?: string;
}

export interface NetworkSubnet {
  readonly subnet: string;
  readonly gateway?: string;
}

export interface NetworkInfo {
  readonly id: string;
  readonly name: string;
  readonly internal: boolean;
  readonly ipv6: boolean;
  readonly labels: Labels;
  readonly driverOptions: Readonly<Record<string, string>>;
  readonly subnets: readonly NetworkSubnet[];
  /** Ids of attached containers (filled by inspect; empty in listings). */
  readonly containers: readonly string[];
}

export interface EndpointSpec {
  readonly network: string;
  readonly ipv4Address?: string;
  readonly aliases?: readonly string[];
}

export interface MountSpec {
  /** Absolute host path. */
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

export interface ResourceLimits {
  readonly memoryBytes: number;
  readonly nanoCpus: number;
  readonly pids: number;
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly labels: Labels;
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** `uid:gid`. */
  readonly user?: string;
  readonly workingDir?: string;
  readonly hostname?: string;
  /** The network joined at creation; more can be connected before start. */
  readonly endpoint: EndpointSpec;
  readonly dns?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly securityOpt?: readonly string[];
  readonly readonlyRootfs?: boolean;
  /** mount point → tmpfs options. */
  readonly tmpfs?: Readonly<Record<string, string>>;
  readonly limits?: ResourceLimits;
  readonly sysctls?: Readonly<Record<string, string>>;
  readonly mounts?: readonly MountSpec[];
  /** Keep stdin open for one attached client (MCP stdio); EOF when that client closes it. */
  readonly openStdin?: boolean;
  /** Run a tiny init as PID 1: signals reach the process, zombies are reaped. */
  readonly init?: boolean;
  readonly stopSignal?: string;
  readonly stopTimeoutSeconds?: number;
  /** The engine's OCI runtime by its registered name (`runsc` for gVisor); default the engine's own (runc). */
  readonly ociRuntime?: string;
  /** Join this container's network namespace instead of `endpoint` (hostname and dns then come from it). */
  readonly networkOf?: string;
  /** Capabilities added back after `capDrop` (short-lived setup containers only). */
  readonly capAdd?: readonly string[];
}

export type ContainerStatus = "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly labels: Labels;
  readonly status: ContainerStatus;
  readonly running: boolean;
  readonly exitCode?: number;
  /** Host pid of the container's first process, while running (filled by inspect). */
  readonly pid?: number;
  /** network name → the container's IPv4 address there (filled by inspect). */
  readonly addresses: Readonly<Record<string, string>>;
  /** When the container was created, ISO-8601. */
  readonly createdAt?: string;
  /** The OCI runtime it runs under, e.g. runc or runsc (filled by inspect). */
  readonly ociRuntime?: string;
}

/** A container's stdio as Node streams: stdin only when the container keeps it open. */
export interface AttachedStdio {
  readonly stdin: Writable | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Drops the connection; stdout and stderr end. */
  close(): void;
}

export interface LogOptions {
  /** Keep streaming new lines until close() or until the container stops. */
  readonly follow: boolean;
  /** Only what was logged after this instant: `<unix seconds>[.<nanoseconds>]`, as Docker takes it. */
  readonly since?: string;
  /** Prefix every line with the instant it was logged (RFC 3339, nanoseconds) and a space. */
  readonly timestamps?: boolean;
}

/** What a container wrote to stdout and stderr, as its log driver kept it (`docker logs`). */
export interface ContainerLogs {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Stops reading; stdout and stderr end or close. */
  close(): void;
}

export interface BuildSpec {
  readonly contextDir: string;
  /** Relative to contextDir. */
  readonly dockerfile: string;
  readonly tag: string;
  readonly labels: Labels;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** One line of builder output ("Step 2/5 : COPY ..."). */
  readonly onOutput?: (line: string) => void;
}

export interface ImageInfo {
  readonly id: string;
  readonly tags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly labels: Labels;
}

export interface VolumeInfo {
  readonly name: string;
  readonly labels: Labels;
}

export interface ContainerEngine {
  /** Throws HangarError HANGAR_DOCKER when no engine answers. */
  ping(): Promise<void>;
  /** The names of the OCI runtimes the engine has registered (`docker info` Runtimes), e.g. runc, runsc. */
  ociRuntimes(): Promise<string[]>;

  createNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  inspectNetwork(nameOrId: string): Promise<NetworkInfo | undefined>;
  /** Without labels: every network (subnet allocation must see foreign ones too). */
  listNetworks(query?: LabelQuery): Promise<NetworkInfo[]>;
  /** Idempotent: a missing network is not an error. */
  removeNetwork(nameOrId: string): Promise<void>;
  connectNetwork(containerId: string, endpoint: EndpointSpec): Promise<void>;

  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** Idempotent: stopping a stopped or missing container is not an error. */
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  killContainer(id: string, signal: string): Promise<void>;
  /** Sets a running (or created) container's CPU quota; 0 lifts it. */
  updateCpuLimit(id: string, nanoCpus: number): Promise<void>;
  /** Forced and idempotent. */
  removeContainer(id: string): Promise<void>;
  inspectContainer(idOrName: string): Promise<ContainerInfo | undefined>;
  listContainers(query?: LabelQuery): Promise<ContainerInfo[]>;
  /** Resolves with the exit code once the container is not running. */
  waitContainer(id: string): Promise<number>;
  /** Attach before start to miss nothing; works again on a stopped container before a restart. */
  attach(id: string, options: { stdin: boolean }): Promise<AttachedStdio>;
  /** The container's log; without follow the streams end at its current end. */
  logs(id: string, options: LogOptions): Promise<ContainerLogs>;

  buildImage(spec: BuildSpec): Promise<ImageInfo>;
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  listImages(query?: LabelQuery): Promise<ImageInfo[]>;
  /** Idempotent. Without `force`, an image a container still uses stays (and that is not an error). */
  removeImage(ref: string, options?: { force?: boolean }): Promise<void>;

  listVolumes(query?: LabelQuery): Promise<VolumeInfo[]>;
  removeVolume(name: string): Promise<void>;
}
