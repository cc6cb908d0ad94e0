import type { ContainerEngine, ContainerInfo, LabelQuery, NetworkInfo, VolumeInfo } from "../../src/docker/container-engine.js";
import { hangarLabels, LABEL_OWNER } from "../../src/docker/labels.js";
import type { DockerContext, OpenDockerContext } from "../../src/cli/docker-context.js";

/**
 * A Docker engine holding labelled sandboxes in memory, for the verbs that list and stop them
 * (ps, stop, events) without Docker. It records what the verbs stop and remove; any other
 * engine call fails the test. The real engine is exercised by test/docker/cli-sandbox-verbs.
 */
export interface ListingEngine {
  readonly engine: ContainerEngine;
  readonly open: OpenDockerContext;
  /** "stop <id>", "remove <id>", "remove network <id>", in call order. */
  readonly calls: string[];
}

/** One sandbox: a running sidecar and server container and its network, owned by a process on another host. */
export function sandbox(server: string, run: string, createdAt = "2026-01-01T00:00:00.000Z", owner = "elsewhere:1"): { containers: ContainerInfo[]; network: NetworkInfo } {
  const labels = (role: "sidecar" | "server" | "network"): Record<string, string> => hangarLabels({ server, role, run }, { [LABEL_OWNER]: owner });
  const container = (role: "sidecar" | "server"): ContainerInfo => ({
    id: `${role}-${server}-${run}`,
    name: `hangar-${server}-${run}-${role}`,
    image: "img",
    labels: labels(role),
    status: "running",
    running: true,
    addresses: {},
    createdAt,
  });
  const network: NetworkInfo = { id: `net-${server}-${run}`, name: `hangar-${server}-${run}`, internal: true, ipv6: false, labels: labels("network"), driverOptions: {}, subnets: [], containers: [`sidecar-${server}-${run}`, `server-${server}-${run}`] };
  return { containers: [container("sidecar"), container("server")], network };
}

export function listingEngine(sandboxes: ReturnType<typeof sandbox>[], extra: { networks?: NetworkInfo[]; volumes?: VolumeInfo[]; containers?: ContainerInfo[] } = {}): ListingEngine {
  const containers = [...sandboxes.flatMap((s) => s.containers), ...(extra.containers ?? [])];
  const networks = [...sandboxes.map((s) => s.network), ...(extra.networks ?? [])];
  const volumes = extra.volumes ?? [];
  const calls: string[] = [];
  const matches = (labels: Readonly<Record<string, string>>, query?: LabelQuery): boolean =>
    (query?.labels ?? []).every((term) => labels[term.slice(0, term.indexOf("="))] === term.slice(term.indexOf("=") + 1));
  const implemented: Partial<ContainerEngine> = {
    ping: async () => undefined,
    listContainers: async (query) => containers.filter((c) => matches(c.labels, query)),
    listNetworks: async (query) => networks.filter((n) => matches(n.labels, query)),
    stopContainer: async (id) => void calls.push(`stop ${id}`),
    removeContainer: async (id) => void calls.push(`remove ${id}`),
    removeNetwork: async (id) => void calls.push(`remove network ${id}`),
    // What prune needs: a network's attached containers, volumes, and no images.
    inspectNetwork: async (id) => networks.find((n) => n.id === id),
    listVolumes: async (query) => volumes.filter((v) => matches(v.labels, query)),
    removeVolume: async (name) => void calls.push(`remove volume ${name}`),
    listImages: async () => [],
  };
  const engine = new Proxy(implemented, {
    get(target, property: string) {
      const method = target[property as keyof ContainerEngine];
      if (method === undefined) throw new Error(`the listing engine has no ${property}()`);
      return method;
    },
  }) as ContainerEngine;
  // The verbs use only the engine of their context.
  const open: OpenDockerContext = async () => ({ engine }) as unknown as DockerContext;
  return { engine, open, calls };
}
