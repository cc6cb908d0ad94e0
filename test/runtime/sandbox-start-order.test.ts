import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { isHangarError } from "../../src/core/errors.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import type { AttachedStdio, ContainerEngine, ContainerSpec, NetworkInfo, NetworkSpec } from "../../src/docker/container-engine.js";
import { LABEL_STATE_DIR, LABEL_UID } from "../../src/docker/labels.js";
import { RuntimeConfigSchema } from "../../src/runtime/runtime-config.js";
import type { RuntimeEvent, SandboxEvent } from "../../src/runtime/sandbox-events.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import { GATE_MOUNT_FILE } from "../../src/runtime/start-gate.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";

/**
 * The order of a start, against an engine that records every call: the server container is
 * created while the sidecar starts, but started only once the sidecar said "started"; a
 * sidecar that fails leaves nothing behind, the server created beside it included.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function recordingEngine(options: { sidecarExits?: boolean; updateFails?: readonly string[] }) {
  const calls: string[] = [];
  const stdins = new Map<string, PassThrough>();
  const specs = new Map<string, ContainerSpec>();
  const stopped = new Map<string, () => void>();
  const live = new Set<string>();
  const names = new Map<string, string>();
  const stdouts = new Map<string, PassThrough>();
  const network = (spec: NetworkSpec): NetworkInfo => ({ id: `id-${spec.name}`, name: spec.name, internal: spec.internal, ipv6: false, labels: spec.labels, driverOptions: {}, subnets: [], containers: [] });
  const implemented: Partial<ContainerEngine> = {
    inspectImage: async (ref) => ({ id: "sha256:s", tags: [ref], repoDigests: [], labels: {} }),
    listContainers: async () => [],
    ociRuntimes: async () => ["runc", "runsc"],
    listNetworks: async () => [],
    inspectNetwork: async () => undefined,
    createNetwork: async (spec) => {
      calls.push(`create network ${spec.internal ? "internal" : "egress"}`);
      live.add(`id-${spec.name}`);
      return network(spec);
    },
    removeNetwork: async (id) => void (calls.push(`remove network ${id.includes("egress") ? "egress" : "internal"}`), live.delete(id)),
    createContainer: async (spec: ContainerSpec) => {
      const role = spec.labels["hangar.role"]!;
      calls.push(`create ${role}`);
      names.set(role, JSON.stringify(spec.labels));
      specs.set(role, spec);
      live.add(role);
      return role;
    },
    connectNetwork: async (id) => void calls.push(`connect ${id}`),
    attach: async (id): Promise<AttachedStdio> => {
      const stdout = new PassThrough();
      stdouts.set(id, stdout);
      const stdin = new PassThrough();
      stdin.on("data", (chunk: Buffer) => calls.push(`stdin ${id} ${JSON.stringify(chunk.toString("utf8"))}`));
      stdins.set(id, stdin);
      return { stdin, stdout, stderr: new PassThrough(), close: () => stdout.end() };
    },
    startContainer: async (id) => {
      calls.push(`start ${id}`);
      if (id === "sidecar" && options.sidecarExits !== true) {
        // As the real one: some time later, its "started" event on stdout.
        setTimeout(() => {
          calls.push("sidecar ready");
          stdouts.get(id)!.write(`${JSON.stringify({ v: 1, ts: new Date(0).toISOString(), type: "lifecycle", server: "order", action: "started" })}\n`);
        }, 30);
      }
    },
    waitContainer: (id) =>
      id === "sidecar" && options.sidecarExits === true ? new Promise((r) => setTimeout(() => r(1), 30)) : new Promise((r) => stopped.set(id, () => r(0))),
    stopContainer: async (id) => void (calls.push(`stop ${id}`), stopped.get(id)?.()),
    killContainer: async (id, signal) => void calls.push(`kill ${id} ${signal}`),
    updateCpuLimit: async (id, nanoCpus) => {
      calls.push(`cpu ${id} ${nanoCpus}`);
      if (options.updateFails?.includes(id) === true) throw new Error("update refused");
    },
    removeContainer: async (id) => void (calls.push(`remove ${id}`), live.delete(id)),
  };
  const engine = new Proxy(implemented, {
    get: (target, p: string) => target[p as keyof ContainerEngine] ?? (async () => { throw new Error(`unexpected engine call ${p}()`); }),
  }) as ContainerEngine;
  return { engine, calls, live, specs, labelsOf: (role: string) => JSON.parse(names.get(role) ?? "{}") as Record<string, string> };
}

/** A start of policy "order" in a fresh state directory (the policy file written there). */
async function startIn(
  engine: ContainerEngine,
  onEvent?: (e: SandboxEvent) => void,
  options: { entrypoint?: string[]; runtime?: Record<string, unknown> } = {},
): Promise<{ stateDir: string; started: Promise<StartedSandbox> }> {
  const stateDir = mkdtempSync(join(tmpdir(), "hangar-order-"));
  dirs.push(stateDir);
  writeFileSync(join(stateDir, "order.yaml"), "version: 1\nname: order\nserver: { image: { ref: x } }\n");
  const started = new Sandbox({ engine, logger: pino({ level: "silent" }) }).start({
    policy: PolicySchema.parse({ version: 1, name: "order", server: { image: { ref: "x" }, resources: { memory: "64m", cpus: 0.25, pids: 64 } } }),
    policyFile: join(stateDir, "order.yaml"),
    runtime: RuntimeConfigSchema.parse({ runtime: options.runtime ?? {} }),
    image: { id: "sha256:abc", ...(options.entrypoint !== undefined ? { entrypoint: options.entrypoint } : {}) },
    baselineFile: false,
    stateDir,
    secretSource: {},
    ...(onEvent !== undefined ? { onEvent } : {}),
  });
  return { stateDir, started };
}

describe("Sandbox.start order", () => {
  it("creates the server while the sidecar starts, starts it only after the sidecar is ready, and reports the phases", async () => {
    const { engine, calls, labelsOf } = recordingEngine({});
    const events: SandboxEvent[] = [];
    const { stateDir, started: starting } = await startIn(engine, (e) => events.push(e));
    await starting;
    expect(calls.indexOf("create server")).toBeLessThan(calls.indexOf("sidecar ready"));
    expect(calls.indexOf("start server")).toBeGreaterThan(calls.indexOf("sidecar ready"));
    const started = events.find((e): e is RuntimeEvent => e.type === "runtime" && e.action === "sandbox-started");
    expect(Object.keys((started?.detail?.["phases"] ?? {}) as object).sort()).toEqual(["checks", "network", "reap+egress", "server-create", "server-start", "sidecar", "sidecar-limit"]);
    // Every object of the run says whose it is and which state directory it belongs to.
    expect(labelsOf("server")).toMatchObject({ [LABEL_UID]: String(process.getuid?.() ?? -1), [LABEL_STATE_DIR]: stateDir });
  });

  it("a sidecar that exits: the start fails and removes everything it created, the server made beside it included", async () => {
    const { engine, calls, live } = recordingEngine({ sidecarExits: true });
    const err = await (await startIn(engine)).started.catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_SIDECAR_NOT_READY")).toBe(true);
    expect(calls).toContain("create server");
    expect(calls).not.toContain("start server");
    expect(calls).toEqual(expect.arrayContaining(["remove server", "remove sidecar", "remove network internal"]));
    // Only the shared egress network may stay (other sandboxes use it).
    expect([...live].filter((id) => !id.includes("egress"))).toEqual([]);
  });
});

describe("the start gate and the start-up CPU boost", () => {
  it("starts a node server beside the sidecar, held by its gate, and lets it go only once the sidecar serves", async () => {
    const { engine, calls, specs } = recordingEngine({});
    const box = await (await startIn(engine, undefined, { entrypoint: ["node", "/srv/main.js"], runtime: { startCpuBoostMs: 20 } })).started;
    expect(specs.get("server")?.entrypoint).toEqual(["node", "--require", GATE_MOUNT_FILE, "/srv/main.js"]);
    expect(specs.get("server")?.mounts).toContainEqual(expect.objectContaining({ target: GATE_MOUNT_FILE, readOnly: true }));
    // Started before the sidecar is ready; the gate's line only after it.
    expect(calls.indexOf("start server")).toBeLessThan(calls.indexOf("sidecar ready"));
    const gateLine = calls.indexOf('stdin server "\\n"');
    expect(gateLine).toBeGreaterThan(calls.indexOf("sidecar ready"));
    expect(calls.filter((c) => c.startsWith("stdin server"))[0]).toBe('stdin server "\\n"');
    // Both created without a CPU quota; the sidecar's set once it serves, the server's after the boost.
    expect(specs.get("sidecar")?.limits?.nanoCpus).toBe(0);
    expect(specs.get("server")?.limits?.nanoCpus).toBe(0);
    expect(calls.indexOf("cpu sidecar 500000000")).toBeGreaterThan(calls.indexOf("sidecar ready"));
    await box.cpuLimited;
    expect(calls).toContain("cpu server 250000000");
    await box.stop();
  });

  it("kills the server when its quota cannot be set after the boost: never left unbounded", async () => {
    const { engine, calls } = recordingEngine({ updateFails: ["server"] });
    const events: SandboxEvent[] = [];
    const box = await (await startIn(engine, (e) => events.push(e), { entrypoint: ["node", "/srv/main.js"], runtime: { startCpuBoostMs: 20 } })).started;
    await box.cpuLimited;
    expect(calls).toContain("kill server SIGKILL");
    expect(events.some((e) => e.type === "runtime" && e.action === "cpu-limit-failed")).toBe(true);
    await box.stop();
  });

  it("fails the start when the sidecar's quota cannot be set, and removes what it made", async () => {
    const { engine, calls } = recordingEngine({ updateFails: ["sidecar"] });
    const err = await (await startIn(engine, undefined, { entrypoint: ["node", "/srv/main.js"] })).started.catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/update refused/);
    expect(calls).toEqual(expect.arrayContaining(["remove server", "remove sidecar"]));
    // The gate never opened: the server's code never ran.
    expect(calls.some((c) => c.startsWith("stdin server"))).toBe(false);
  });

  it("with startCpuBoostMs 0 every quota is set at creation and nothing is updated; without node the server is not gated", async () => {
    const { engine, calls, specs } = recordingEngine({});
    const box = await (await startIn(engine, undefined, { entrypoint: ["python3", "/srv/main.py"], runtime: { startCpuBoostMs: 0 } })).started;
    expect(specs.get("sidecar")?.limits?.nanoCpus).toBe(500_000_000);
    expect(specs.get("server")?.limits?.nanoCpus).toBe(250_000_000);
    expect(specs.get("server")?.entrypoint).toEqual(["python3", "/srv/main.py"]);
    expect(calls.some((c) => c.startsWith("cpu "))).toBe(false);
    expect(calls.indexOf("start server")).toBeGreaterThan(calls.indexOf("sidecar ready"));
    expect(calls.some((c) => c.startsWith("stdin server"))).toBe(false);
    await box.stop();
  });

  it("a gVisor server gets its quota at creation (runsc cannot update a running sandbox); its sidecar, on runc, is still boosted", async () => {
    const { engine, calls, specs } = recordingEngine({});
    const box = await (await startIn(engine, undefined, { entrypoint: ["node", "/srv/main.js"], runtime: { startCpuBoostMs: 20, isolation: "gvisor" } })).started;
    expect(specs.get("server")?.limits?.nanoCpus).toBe(250_000_000);
    expect(specs.get("sidecar")?.limits?.nanoCpus).toBe(0);
    await box.cpuLimited;
    expect(calls.filter((c) => c.startsWith("cpu "))).toEqual(["cpu sidecar 500000000"]);
    await box.stop();
  });
});
