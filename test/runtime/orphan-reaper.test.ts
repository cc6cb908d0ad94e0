import { describe, expect, it } from "vitest";
import type { ContainerEngine, ContainerInfo, LabelQuery, NetworkInfo } from "../../src/docker/container-engine.js";
import { hangarLabels, LABEL_OWNER } from "../../src/docker/labels.js";
import { OrphanReaper, removeRun } from "../../src/runtime/orphan-reaper.js";

/** Labelled sandboxes in memory; records removals; any other engine call fails the test. */
function engineWith(runs: { server: string; run: string; owner: string }[]): { engine: ContainerEngine; calls: string[] } {
  const calls: string[] = [];
  const labels = (r: (typeof runs)[number], role: "sidecar" | "server" | "network"): Record<string, string> =>
    hangarLabels({ server: r.server, role, run: r.run }, { [LABEL_OWNER]: r.owner });
  let containers: ContainerInfo[] = runs.flatMap((r) =>
    (["sidecar", "server"] as const).map((role) => ({ id: `${role}-${r.run}`, name: `${role}-${r.run}`, image: "i", labels: labels(r, role), status: "running" as const, running: true, addresses: {} })),
  );
  let networks: NetworkInfo[] = runs.map((r) => ({ id: `net-${r.run}`, name: `net-${r.run}`, internal: true, ipv6: false, labels: labels(r, "network"), driverOptions: {}, subnets: [], containers: [] }));
  const matches = (l: Readonly<Record<string, string>>, q?: LabelQuery): boolean => (q?.labels ?? []).every((t) => l[t.slice(0, t.indexOf("="))] === t.slice(t.indexOf("=") + 1));
  const implemented: Partial<ContainerEngine> = {
    listContainers: async (q) => containers.filter((c) => matches(c.labels, q)),
    listNetworks: async (q) => networks.filter((n) => matches(n.labels, q)),
    removeContainer: async (id) => {
      calls.push(`remove ${id}`);
      containers = containers.filter((c) => c.id !== id);
    },
    removeNetwork: async (id) => {
      calls.push(`remove network ${id}`);
      networks = networks.filter((n) => n.id !== id);
    },
  };
  const engine = new Proxy(implemented, {
    get: (target, p: string) => target[p as keyof ContainerEngine] ?? ((): never => { throw new Error(`unexpected engine call ${p}()`); }),
  }) as ContainerEngine;
  return { engine, calls };
}

describe("OrphanReaper", () => {
  it("leaves every run of the server whose owner lives, here or on another host, and removes those whose owner is dead", async () => {
    const { engine, calls } = engineWith([
      { server: "memory", run: "live1", owner: "here:1" },
      { server: "memory", run: "live2", owner: "here:2" },
      { server: "memory", run: "remote", owner: "elsewhere:1" },
      { server: "memory", run: "dead", owner: "here:3" },
      { server: "other", run: "dead2", owner: "here:4" },
    ]);
    const alive = new Set(["here:1", "here:2", "elsewhere:1"]);
    const removed = await new OrphanReaper(engine, (owner) => alive.has(owner)).reap("memory");
    expect(removed).toBe(3);
    expect(calls.sort()).toEqual(["remove network net-dead", "remove server-dead", "remove sidecar-dead"]);
  });
});

describe("removeRun", () => {
  it("removes one run's containers before its network, and is a no-op the second time", async () => {
    const { engine, calls } = engineWith([
      { server: "memory", run: "a", owner: "here:1" },
      { server: "memory", run: "b", owner: "here:1" },
    ]);
    expect(await removeRun(engine, { server: "memory", run: "a" })).toBe(3);
    expect(calls.at(-1)).toBe("remove network net-a");
    expect(calls.slice(0, 2).sort()).toEqual(["remove server-a", "remove sidecar-a"]);
    expect(await removeRun(engine, { server: "memory", run: "a" })).toBe(0);
    expect(calls).toHaveLength(3);
  });
});
