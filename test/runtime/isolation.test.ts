import { describe, expect, it } from "vitest";
import { isHangarError } from "../../src/core/errors.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import type { ContainerEngine } from "../../src/docker/container-engine.js";
import { assertIsolationAvailable, chooseIsolation, ociRuntimeFor, resolvConfFor } from "../../src/docker/isolation.js";
import { RuntimeConfigSchema } from "../../src/runtime/runtime-config.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import { pino } from "pino";
import { serverContainerSpec, sidecarContainerSpec } from "../../src/runtime/sandbox-specs.js";
import { candidateSubnets } from "../../src/runtime/subnet-allocator.js";

const id = { server: "iso", run: "r1", owner: "host:1" };
const subnet = [...candidateSubnets("10.213.0.0/16", [])][0]!;
const policyWith = (isolation?: "runc" | "gvisor") =>
  PolicySchema.parse({ version: 1, name: "iso", server: { image: { ref: "x" }, ...(isolation !== undefined ? { isolation } : {}) } });
const engineWith = (runtimes: string[]): ContainerEngine => ({ ociRuntimes: async () => runtimes }) as Partial<ContainerEngine> as ContainerEngine;

describe("isolation settings", () => {
  it("hangar.yaml's runtime.isolation defaults to runc and takes gvisor; anything else names the value", () => {
    expect(RuntimeConfigSchema.parse({}).runtime.isolation).toBe("runc");
    expect(RuntimeConfigSchema.parse({ runtime: { isolation: "gvisor" } }).runtime.isolation).toBe("gvisor");
    const bad = RuntimeConfigSchema.safeParse({ runtime: { isolation: "kata" } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ["runtime", "isolation"], message: '"kata" is not an isolation; expected "runc" or "gvisor"' });
  });

  it("a policy's server.isolation overrides hangar.yaml, in both directions", () => {
    expect(chooseIsolation(policyWith("gvisor").server, "p.yaml", "runc")).toEqual({ isolation: "gvisor", source: "server.isolation in p.yaml" });
    expect(chooseIsolation(policyWith("runc").server, "p.yaml", "gvisor").isolation).toBe("runc");
    expect(chooseIsolation(policyWith().server, "p.yaml", "gvisor")).toMatchObject({ isolation: "gvisor", source: expect.stringContaining("runtime.isolation") });
    expect(PolicySchema.safeParse({ version: 1, name: "iso", server: { image: { ref: "x" }, isolation: "vm" } }).success).toBe(false);
  });
});

describe("fail closed when the engine has no runsc", () => {
  it("refuses gvisor with the file, the key and what the engine has", async () => {
    const err = await assertIsolationAvailable(engineWith(["runc", "io.containerd.runc.v2"]), chooseIsolation(policyWith("gvisor").server, "policies/x.yaml", "runc")).catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_ISOLATION_UNAVAILABLE")).toBe(true);
    expect((err as Error).message).toMatch(/^server\.isolation in policies\/x\.yaml: "gvisor" needs the Docker engine's "runsc" runtime, and the engine has only "runc", "io\.containerd\.runc\.v2"/);
  });

  it("lets gvisor through when runsc is registered, and never asks the engine for runc", async () => {
    await expect(assertIsolationAvailable(engineWith(["runc", "runsc"]), { isolation: "gvisor", source: "s" })).resolves.toBeUndefined();
    const noCalls = {} as ContainerEngine;
    await expect(assertIsolationAvailable(noCalls, { isolation: "runc", source: "s" })).resolves.toBeUndefined();
  });
});

describe("Sandbox.start with gvisor on an engine without runsc", () => {
  it("throws before it creates anything: no network, no container", async () => {
    const calls: string[] = [];
    const implemented: Partial<ContainerEngine> = {
      inspectImage: async (ref) => (calls.push(`inspectImage ${ref}`), { id: "sha256:s", tags: [ref], repoDigests: [], labels: {} }),
      ociRuntimes: async () => (calls.push("ociRuntimes"), ["runc"]),
    };
    const engine = new Proxy(implemented, {
      get: (target, p: string) => target[p as keyof ContainerEngine] ?? (async () => { calls.push(p); throw new Error(`unexpected engine call ${p}()`); }),
    }) as ContainerEngine;
    const sandbox = new Sandbox({ engine, logger: pino({ level: "silent" }) });
    const err = await sandbox
      .start({ policy: policyWith(), policyFile: "/p/iso.yaml", runtime: RuntimeConfigSchema.parse({ runtime: { isolation: "gvisor" } }), image: { id: "sha256:abc" }, baselineFile: false })
      .catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_ISOLATION_UNAVAILABLE")).toBe(true);
    expect((err as Error).message).toContain("runtime.isolation in hangar.yaml");
    expect(calls).toEqual(["inspectImage hangar/sidecar:local", "ociRuntimes"]);
  });
});

describe("container specs under gvisor", () => {
  const gvisor = { ociRuntime: ociRuntimeFor("gvisor")!, resolvConf: "/state/run/resolv.conf" };
  const spec = serverContainerSpec({ id, subnet, policy: policyWith("gvisor"), policyFile: "/p/iso.yaml", image: { id: "sha256:abc" }, secrets: {}, gvisor });
  const plain = serverContainerSpec({ id, subnet, policy: policyWith(), policyFile: "/p/iso.yaml", image: { id: "sha256:abc" }, secrets: {} });

  it("runs the server under runsc with the same hardening as under runc", () => {
    expect(spec.ociRuntime).toBe("runsc");
    expect(plain.ociRuntime).toBeUndefined();
    const hardening = (s: typeof spec) => ({ user: s.user, capDrop: s.capDrop, securityOpt: s.securityOpt, readonlyRootfs: s.readonlyRootfs, limits: s.limits, tmpfs: s.tmpfs, init: s.init });
    expect(hardening(spec)).toEqual(hardening(plain));
  });

  it("points the server's resolver straight at its sidecar (gVisor cannot reach Docker's 127.0.0.11)", () => {
    expect(spec.mounts).toContainEqual({ source: "/state/run/resolv.conf", target: "/etc/resolv.conf", readOnly: true });
    expect(plain.mounts?.some((m) => m.target === "/etc/resolv.conf")).toBe(false);
    expect(resolvConfFor(subnet.sidecar)).toMatch(new RegExp(`^nameserver ${subnet.sidecar.replaceAll(".", "\\.")}\n`));
  });

  it("keeps the sidecar on the engine's default runtime", () => {
    const sidecar = sidecarContainerSpec({ id, subnet, runtime: RuntimeConfigSchema.parse({ runtime: { isolation: "gvisor" } }).runtime, policyDir: "/p" });
    expect(sidecar.ociRuntime).toBeUndefined();
  });
});
