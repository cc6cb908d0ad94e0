import { chmodSync, renameSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerEngine, ContainerSpec, NetworkInfo } from "../../../src/docker/container-engine.js";
import type { Labels } from "../../../src/docker/labels.js";

/**
 * The upstream resolver every test sidecar asks (runtime.upstreamResolvers): dns-server.mjs on
 * the egress network, answering only the names our fixtures register (A → the fixture's address)
 * and NXDOMAIN for every other name, never forwarding. Docker's embedded resolver would forward
 * an unknown name to the host's own resolver, off this machine.
 *
 * Names arrive through a file, not the network: names.json in a host folder mounted read-only,
 * replaced atomically (write, rename) and re-read by the resolver when it changes. So registering
 * needs no route from the host onto the egress network, no restart (the address stays), and is
 * done before register() returns. What it was asked comes back through the engine's logs.
 */
export interface ResolverQuery {
  readonly name: string;
  readonly type: string;
  readonly rcode: "NOERROR" | "NXDOMAIN";
}

/** The resolver started on each egress network (by name), for writeRunConfig. */
const byNetwork = new Map<string, TestResolver>();

export class TestResolver {
  private readonly names: Record<string, string> = {};

  private constructor(
    private readonly engine: ContainerEngine,
    readonly id: string,
    /** Its container's name. */
    readonly name: string,
    /** Its address on the egress network: the one entry of runtime.upstreamResolvers. */
    readonly ip: string,
    private readonly file: string,
  ) {}

  /** Starts the resolver on `network`; `dir` (a host folder of the caller's, removed by it) holds names.json. */
  static async start(
    engine: ContainerEngine,
    options: { name: string; image: string; network: NetworkInfo; labels: Labels; dir: string },
  ): Promise<TestResolver> {
    await mkdir(options.dir, { recursive: true });
    // The resolver runs as 10001: it reads through the mount, whoever owns the folder.
    chmodSync(options.dir, 0o755);
    const file = join(options.dir, "names.json");
    writeNames(file, {});
    const id = await engine.createContainer({
      name: options.name,
      image: options.image,
      labels: options.labels,
      cmd: ["/fixtures/dns-server.mjs"],
      env: { NAMES_FILE: "/resolver/names.json" },
      user: "10001:10001",
      init: true,
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
      mounts: [{ source: options.dir, target: "/resolver", readOnly: true }],
      endpoint: { network: options.network.name },
    });
    await engine.startContainer(id);
    const ip = (await engine.inspectContainer(id))?.addresses[options.network.name];
    if (ip === undefined) throw new Error(`resolver ${options.name} has no address on ${options.network.name}`);
    const resolver = new TestResolver(engine, id, options.name, ip, file);
    await resolver.ready();
    byNetwork.set(options.network.name, resolver);
    return resolver;
  }

  /** The resolver this process started on that egress network, if any. */
  static on(network: string): TestResolver | undefined {
    return byNetwork.get(network);
  }

  /** runtime.upstreamResolvers for sidecars of this test. */
  get upstreamResolvers(): string[] {
    return [this.ip];
  }

  /** From now on, A queries for each name answer `ip`. */
  register(names: readonly string[], ip: string): void {
    for (const name of names) this.names[name.toLowerCase().replace(/\.$/, "")] = ip;
    writeNames(this.file, this.names);
  }

  /** Every query it has answered, in order. */
  async queries(): Promise<ResolverQuery[]> {
    return (await this.output("stdout"))
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as ResolverQuery);
  }

  private async ready(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if ((await this.output("stderr")).includes("dns listening")) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the test resolver did not start listening");
  }

  private async output(stream: "stdout" | "stderr"): Promise<string> {
    const logs = await this.engine.logs(this.id, { follow: false });
    const chunks: Buffer[] = [];
    const source = logs[stream];
    (stream === "stdout" ? logs.stderr : logs.stdout).resume();
    for await (const chunk of source) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }
}

function writeNames(file: string, names: Record<string, string>): void {
  // Atomic for the reader: it sees the old file or the new one, never half of one.
  writeFileSync(`${file}.tmp`, JSON.stringify(names));
  chmodSync(`${file}.tmp`, 0o644);
  renameSync(`${file}.tmp`, file);
}

/**
 * The guard: `engine`, except that creating a sidecar (a container given HANGAR_SIDECAR_CONFIG)
 * whose runtime.upstreamResolvers is unset (the engine's embedded resolver) or names anything but
 * a container of ours (`isOurs`) throws.
 * Every in-process sandbox of the Docker tests is started through it.
 */
export function requireOurResolvers(engine: ContainerEngine, isOurs: (ip: string) => boolean): ContainerEngine {
  const createContainer = async (spec: ContainerSpec): Promise<string> => {
    // The sidecar proper: its configuration comes in this variable (its helper containers have none).
    const text = spec.env?.["HANGAR_SIDECAR_CONFIG"];
    if (text !== undefined) {
      const config = JSON.parse(text) as { upstreamDns?: string[] };
      const resolvers = config.upstreamDns ?? [];
      const foreign = resolvers.filter((r) => !isOurs(r.split(":")[0]!));
      if (resolvers.length === 0 || foreign.length > 0) {
        throw new Error(
          `test sidecar ${spec.name} would resolve through ${resolvers.length === 0 ? "the engine's resolver" : foreign.join(", ")}: ` +
            "give it runtime.upstreamResolvers of this file's resolver (DockerTestEnv.runtimeConfig)",
        );
      }
    }
    return engine.createContainer(spec);
  };
  return new Proxy(engine, {
    get(target, prop, receiver) {
      if (prop === "createContainer") return createContainer;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
