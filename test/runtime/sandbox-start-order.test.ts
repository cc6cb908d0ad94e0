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

/**
 * The order of a start, against an engine that records every call: the server container is
 * created while the sidecar starts, but started only once the sidecar said "started"; a
 * sidecar that fails leaves nothing behind, the server created beside it included.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function recordingEngine(options: { sidecarExits?: boolean }) {
  const calls: string[] = [];
  const live = new Set<string>();
  const names = new Map<string, string>();
  const stdouts = new Map<string, PassThrough>();
  const network = (spec: NetworkSpec): NetworkInfo => ({ id: `id-${spec.name}`, name: spec.name, internal: spec.internal, ipv6: false, labels: spec.labels, driverOptions: {}, subnets: [], containers: [] });
  const implemented: Partial<ContainerEngine> = {
    inspectImage: async (ref) => ({ id: "sha256:s", tags: [ref], repoDigests: [], labels: {} }),
    listContainers: async () => [],
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
      live.add(role);
      return role;
    },
    connectNetwork: async (id) => void calls.push(`connect ${id}`),
    attach: async (id): Promise<AttachedStdio> => {
      const stdout = new PassThrough();
      stdouts.set(id, stdout);
      return { stdin: new PassThrough(), stdout, stderr: new PassThrough(), close: () => stdout.end() };
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
    waitContainer: (id) => (id === "sidecar" && options.sidecarExits === true ? new Promise((r) => setTimeout(() => r(1), 30)) : new Promise(() => undefined)),
    stopContainer: async (id) => void calls.push(`stop ${id}`),
    removeContainer: async (id) => void (calls.push(`remove ${id}`), live.delete(id)),
  };
  const engine = new Proxy(implemented, {
    get: (target, p: string) => target[p as keyof ContainerEngine] ?? (async () => { throw new Error(`unexpected engine call ${p}()`); }),
  }) as ContainerEngine;
  return { engine, calls, live, labelsOf: (role: string) => JSON.parse(names.get(role) ?? "{}") as Record<string, string> };
}

/** A start of policy "order" in a fresh state directory (the policy file written there). */
async function startIn(engine: ContainerEngine, onEvent?: (e: SandboxEvent) => void): Promise<{ stateDir: string; started: Promise<unknown> }> {
  const stateDir = mkdtempSync(join(tmpdir(), "hangar-order-"));
  dirs.push(stateDir);
  writeFileSync(join(stateDir, "order.yaml"), "version: 1\nname: order\nserver: { image: { ref: x } }\n");
  const started = new Sandbox({ engine, logger: pino({ level: "silent" }) }).start({
    policy: PolicySchema.parse({ version: 1, name: "order", server: { image: { ref: "x" } } }),
    policyFile: join(stateDir, "order.yaml"),
    runtime: RuntimeConfigSchema.parse({}),
    image: { id: "sha256:abc" },
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
    expect(Object.keys((started?.detail?.["phases"] ?? {}) as object).sort()).toEqual(["checks", "network", "reap+egress", "server-create", "server-start", "sidecar"]);
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
