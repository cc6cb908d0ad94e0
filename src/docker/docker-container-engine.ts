import { readdir } from "node:fs/promises";
import type { Duplex } from "node:stream";
import type Dockerode from "dockerode";
import type {
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
  NetworkInfo,
  NetworkSpec,
  VolumeInfo,
} from "./container-engine.js";
import { runtimeError } from "./runtime-error.js";
import { StdioDemuxer } from "./stdio-demuxer.js";

interface DockerApiError {
  readonly statusCode?: number;
  readonly json?: { message?: string } | null;
  readonly message?: string;
}

function statusOf(err: unknown): number | undefined {
  return (err as DockerApiError | null)?.statusCode;
}

function messageOf(err: unknown): string {
  const e = err as DockerApiError | null;
  return e?.json?.message ?? e?.message ?? String(err);
}

function wrap(action: string, err: unknown): Error {
  return runtimeError("HANGAR_DOCKER", `docker: ${action}: ${messageOf(err)}`, {
    cause: err,
    data: { action, statusCode: statusOf(err) },
  });
}

/** Runs `op`; a 404 becomes `missing` (idempotent removal, inspect of absent things). */
async function tolerate<T>(action: string, op: () => Promise<T>, missing: T, alsoOk: readonly number[] = []): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const status = statusOf(err);
    if (status === 404 || (status !== undefined && alsoOk.includes(status))) return missing;
    throw wrap(action, err);
  }
}

async function call<T>(action: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw wrap(action, err);
  }
}

const filters = (query: LabelQuery | undefined): string | undefined =>
  query?.labels?.length ? JSON.stringify({ label: query.labels }) : undefined;

function toNetwork(n: Dockerode.NetworkInspectInfo): NetworkInfo {
  const config = (n.IPAM?.Config ?? []) as Array<{ Subnet?: string; Gateway?: string }>;
  return {
    id: n.Id,
    name: n.Name,
    internal: n.Internal,
    ipv6: n.EnableIPv6,
    labels: n.Labels ?? {},
    driverOptions: n.Options ?? {},
    subnets: config.flatMap((c) => (c.Subnet ? [{ subnet: c.Subnet, ...(c.Gateway ? { gateway: c.Gateway } : {}) }] : [])),
    containers: Object.keys(n.Containers ?? {}),
  };
}

function addressesOf(networks: Record<string, { IPAddress?: string }> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, settings] of Object.entries(networks ?? {})) {
    if (settings.IPAddress) out[name] = settings.IPAddress;
  }
  return out;
}

function toImage(i: { Id: string; RepoTags?: string[] | null; RepoDigests?: string[] | null; Labels?: Record<string, string> | null }): ImageInfo {
  return {
    id: i.Id,
    tags: (i.RepoTags ?? []).filter((t) => t !== "<none>:<none>"),
    repoDigests: (i.RepoDigests ?? []).filter((d) => !d.startsWith("<none>")),
    labels: i.Labels ?? {},
  };
}

function createOptions(spec: ContainerSpec): Dockerode.ContainerCreateOptions {
  const { endpoint } = spec;
  return {
    name: spec.name,
    Image: spec.image,
    Labels: { ...spec.labels },
    ...(spec.entrypoint ? { Entrypoint: [...spec.entrypoint] } : {}),
    ...(spec.cmd ? { Cmd: [...spec.cmd] } : {}),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(spec.user ? { User: spec.user } : {}),
    ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
    ...(spec.hostname && spec.networkOf === undefined ? { Hostname: spec.hostname } : {}),
    ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
    ...(spec.stopTimeoutSeconds !== undefined ? { StopTimeout: spec.stopTimeoutSeconds } : {}),
    Tty: false,
    AttachStdin: spec.openStdin === true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: spec.openStdin === true,
    StdinOnce: spec.openStdin === true,
    HostConfig: {
      NetworkMode: spec.networkOf !== undefined ? `container:${spec.networkOf}` : endpoint.network,
      ...(spec.dns && spec.networkOf === undefined ? { Dns: [...spec.dns] } : {}),
      CapDrop: [...(spec.capDrop ?? [])],
      ...(spec.capAdd !== undefined ? { CapAdd: [...spec.capAdd] } : {}),
      SecurityOpt: [...(spec.securityOpt ?? [])],
      ReadonlyRootfs: spec.readonlyRootfs === true,
      Tmpfs: { ...spec.tmpfs },
      Sysctls: { ...spec.sysctls },
      ...(spec.limits
        ? {
            Memory: spec.limits.memoryBytes,
            // Equal to Memory: no swap on top of the limit.
            MemorySwap: spec.limits.memoryBytes,
            NanoCpus: spec.limits.nanoCpus,
            PidsLimit: spec.limits.pids,
          }
        : {}),
      Mounts: (spec.mounts ?? []).map((m) => ({ Type: "bind" as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      IpcMode: "private",
      ...(spec.ociRuntime !== undefined ? { Runtime: spec.ociRuntime } : {}),
      Init: spec.init === true,
      RestartPolicy: { Name: "no" },
      LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "1" } },
    },
    ...(spec.networkOf === undefined ? { NetworkingConfig: { EndpointsConfig: { [endpoint.network]: endpointConfig(endpoint) } } } : {}),
  };
}

function endpointConfig(endpoint: EndpointSpec): Dockerode.EndpointSettings {
  return {
    ...(endpoint.ipv4Address ? { IPAMConfig: { IPv4Address: endpoint.ipv4Address } } : {}),
    ...(endpoint.aliases ? { Aliases: [...endpoint.aliases] } : {}),
  };
}

/** ContainerEngine over dockerode. The one Dockerode instance is built by the composition root and injected. */
export class DockerContainerEngine implements ContainerEngine {
  constructor(private readonly docker: Dockerode) {}

  async ping(): Promise<void> {
    await call("ping", () => this.docker.ping());
  }

  async ociRuntimes(): Promise<string[]> {
    const info = (await call("info", () => this.docker.info())) as { Runtimes?: Record<string, unknown> };
    return Object.keys(info.Runtimes ?? {});
  }

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    const network = await call(`create network ${spec.name}`, () =>
      this.docker.createNetwork({
        Name: spec.name,
        CheckDuplicate: true,
        Driver: "bridge",
        Internal: spec.internal,
        EnableIPv6: false,
        Attachable: false,
        Labels: { ...spec.labels },
        Options: { ...spec.driverOptions },
        ...(spec.subnet ? { IPAM: { Driver: "default", Config: [{ Subnet: spec.subnet, ...(spec.gateway ? { Gateway: spec.gateway } : {}) }] } } : {}),
      }),
    );
    const info = await this.inspectNetwork(network.id);
    if (info === undefined) throw runtimeError("HANGAR_DOCKER", `docker: network ${spec.name} vanished right after creation`);
    return info;
  }

  inspectNetwork(nameOrId: string): Promise<NetworkInfo | undefined> {
    return tolerate(`inspect network ${nameOrId}`, async () => toNetwork((await this.docker.getNetwork(nameOrId).inspect()) as Dockerode.NetworkInspectInfo), undefined);
  }

  async listNetworks(query?: LabelQuery): Promise<NetworkInfo[]> {
    const f = filters(query);
    const list = await call("list networks", () => this.docker.listNetworks(f ? { filters: f } : {}));
    return list.map(toNetwork);
  }

  async removeNetwork(nameOrId: string): Promise<void> {
    await tolerate(`remove network ${nameOrId}`, () => this.docker.getNetwork(nameOrId).remove(), undefined);
  }

  async connectNetwork(containerId: string, endpoint: EndpointSpec): Promise<void> {
    await call(`connect ${containerId} to ${endpoint.network}`, () =>
      this.docker.getNetwork(endpoint.network).connect({ Container: containerId, EndpointConfig: endpointConfig(endpoint) }),
    );
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const container = await call(`create container ${spec.name}`, () => this.docker.createContainer(createOptions(spec)));
    return container.id;
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      // 304: already running.
      if (statusOf(err) !== 304) throw wrap(`start ${id}`, err);
    }
  }

  async updateCpuLimit(id: string, nanoCpus: number): Promise<void> {
    try {
      await this.docker.getContainer(id).update({ NanoCpus: nanoCpus });
    } catch (err) {
      throw wrap(`update the CPU limit of ${id}`, err);
    }
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    await tolerate(`stop ${id}`, () => this.docker.getContainer(id).stop({ t: timeoutSeconds }), undefined, [304]);
  }

  async killContainer(id: string, signal: string): Promise<void> {
    // 409: not running.
    await tolerate(`kill ${id}`, () => this.docker.getContainer(id).kill({ signal }), undefined, [409]);
  }

  async removeContainer(id: string): Promise<void> {
    // 409: removal already in progress.
    await tolerate(`remove ${id}`, () => this.docker.getContainer(id).remove({ force: true, v: true }), undefined, [409]);
  }

  inspectContainer(idOrName: string): Promise<ContainerInfo | undefined> {
    return tolerate(
      `inspect ${idOrName}`,
      async () => {
        const c = await this.docker.getContainer(idOrName).inspect();
        return {
          id: c.Id,
          name: c.Name.replace(/^\//, ""),
          image: c.Image,
          labels: c.Config.Labels ?? {},
          status: c.State.Status as ContainerStatus,
          running: c.State.Running,
          ...(c.State.Running ? { pid: c.State.Pid } : { exitCode: c.State.ExitCode }),
          addresses: addressesOf(c.NetworkSettings.Networks as Record<string, { IPAddress?: string }>),
          createdAt: new Date(c.Created).toISOString(),
          ...(c.HostConfig.Runtime ? { ociRuntime: c.HostConfig.Runtime } : {}),
        };
      },
      undefined,
    );
  }

  async listContainers(query?: LabelQuery): Promise<ContainerInfo[]> {
    const f = filters(query);
    const list = await call("list containers", () => this.docker.listContainers({ all: true, ...(f ? { filters: f } : {}) }));
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      image: c.Image,
      labels: c.Labels ?? {},
      status: c.State as ContainerStatus,
      running: c.State === "running",
      addresses: addressesOf(c.NetworkSettings?.Networks as Record<string, { IPAddress?: string }> | undefined),
      createdAt: new Date(c.Created * 1000).toISOString(),
    }));
  }

  async waitContainer(id: string): Promise<number> {
    const result = (await tolerate(`wait ${id}`, () => this.docker.getContainer(id).wait(), { StatusCode: -1 })) as { StatusCode?: number };
    return result.StatusCode ?? -1;
  }

  async attach(id: string, options: { stdin: boolean }): Promise<AttachedStdio> {
    const socket = (await call(`attach ${id}`, () =>
      this.docker.getContainer(id).attach({ stream: true, stdin: options.stdin, stdout: true, stderr: true, hijack: options.stdin }),
    )) as unknown as Duplex;
    const demux = new StdioDemuxer();
    socket.pipe(demux);
    socket.on("error", (err) => demux.destroy(err));
    return {
      stdin: options.stdin ? socket : undefined,
      stdout: demux.stdout,
      stderr: demux.stderr,
      close: () => socket.destroy(),
    };
  }

  async logs(id: string, options: LogOptions): Promise<ContainerLogs> {
    const query = { stdout: true, stderr: true, timestamps: options.timestamps === true, ...(options.since !== undefined ? { since: options.since } : {}) };
    const container = this.docker.getContainer(id);
    const demux = new StdioDemuxer();
    if (!options.follow) {
      // Not following, the engine answers with the whole (multiplexed) log at once.
      const data = await call(`logs ${id}`, () => container.logs({ ...query, follow: false }));
      demux.end(data);
      const drop = (): void => {
        demux.stdout.destroy();
        demux.stderr.destroy();
      };
      return { stdout: demux.stdout, stderr: demux.stderr, close: drop };
    }
    const stream = (await call(`logs ${id}`, () => container.logs({ ...query, follow: true }))) as unknown as Duplex;
    stream.pipe(demux);
    stream.on("error", (err) => demux.destroy(err));
    return {
      stdout: demux.stdout,
      stderr: demux.stderr,
      close: () => {
        // A destroyed source never ends the pipe's destination; end it here.
        stream.unpipe(demux);
        stream.destroy();
        demux.end();
      },
    };
  }

  async buildImage(spec: BuildSpec): Promise<ImageInfo> {
    const entries = await readdir(spec.contextDir);
    const stream = await call(`build ${spec.tag}`, () =>
      this.docker.buildImage(
        { context: spec.contextDir, src: entries },
        {
          t: spec.tag,
          dockerfile: spec.dockerfile,
          labels: { ...spec.labels },
          buildargs: { ...spec.buildArgs },
          rm: true,
          forcerm: true,
        } as Dockerode.ImageBuildOptions,
      ),
    );
    await new Promise<void>((resolve, reject) => {
      let failure: string | undefined;
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          if (err !== null || failure !== undefined) {
            const why = failure ?? messageOf(err);
            reject(runtimeError("HANGAR_IMAGE_BUILD", `docker build ${spec.tag} failed: ${why}`, { cause: err ?? undefined, data: { tag: spec.tag } }));
          } else {
            resolve();
          }
        },
        (event: { stream?: string; error?: string; status?: string }) => {
          if (event.error !== undefined) failure = event.error.trim();
          const text = event.stream ?? event.status;
          if (text !== undefined && spec.onOutput) {
            for (const line of text.split("\n")) if (line.trim() !== "") spec.onOutput(line.trimEnd());
          }
        },
      );
    });
    const image = await this.inspectImage(spec.tag);
    if (image === undefined) throw runtimeError("HANGAR_IMAGE_BUILD", `docker build ${spec.tag} reported success but the image is missing`);
    return image;
  }

  inspectImage(ref: string): Promise<ImageInfo | undefined> {
    return tolerate(
      `inspect image ${ref}`,
      async () => {
        const i = await this.docker.getImage(ref).inspect();
        return toImage({ Id: i.Id, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests, Labels: i.Config?.Labels ?? null });
      },
      undefined,
    );
  }

  async listImages(query?: LabelQuery): Promise<ImageInfo[]> {
    const f = filters(query);
    const list = await call("list images", () => this.docker.listImages(f ? { filters: f } : {}));
    return list.map((i) => toImage(i));
  }

  async removeImage(ref: string, options: { force?: boolean } = { force: true }): Promise<void> {
    // 409: still used by a container (only without force).
    await tolerate(`remove image ${ref}`, () => this.docker.getImage(ref).remove({ force: options.force === true }), undefined, [409]);
  }

  async listVolumes(query?: LabelQuery): Promise<VolumeInfo[]> {
    const f = filters(query);
    const result = await call("list volumes", () => this.docker.listVolumes(f ? { filters: f } : {}));
    return (result.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
  }

  async removeVolume(name: string): Promise<void> {
    await tolerate(`remove volume ${name}`, () => this.docker.getVolume(name).remove({ force: true }), undefined);
  }
}
