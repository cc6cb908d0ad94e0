import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { parseBridgeArgs } from "../../src/bridge/bridge-args.js";
import { resolveBridgeCommand } from "../../src/bridge/npm-command.js";
import { isHangarError } from "../../src/core/errors.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import type { ContainerEngine } from "../../src/docker/container-engine.js";
import { BRIDGE_FILE, bridgedServerCommand, MCP_PORT } from "../../src/k8s/render-server.js";
import { RuntimeConfigSchema } from "../../src/runtime/runtime-config.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import { BRIDGE_MOUNT_FILE, BRIDGE_SOCKET_DIR, serverContainerSpec } from "../../src/runtime/sandbox-specs.js";
import { candidateSubnets } from "../../src/runtime/subnet-allocator.js";

const id = { server: "br", run: "r1", owner: "host:1" };
const subnet = [...candidateSubnets("10.213.0.0/16", [])][0]!;
const policy = (server: Record<string, unknown>) => PolicySchema.parse({ version: 1, name: "br", server });
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("runtime.transport in hangar.yaml", () => {
  it("defaults to stdio, takes http, and names a wrong value", () => {
    expect(RuntimeConfigSchema.parse({}).runtime.transport).toBe("stdio");
    expect(RuntimeConfigSchema.parse({ runtime: { transport: "http" } }).runtime.transport).toBe("http");
    const bad = RuntimeConfigSchema.safeParse({ runtime: { transport: "grpc" } });
    expect(bad.error?.issues[0]).toMatchObject({ path: ["runtime", "transport"], message: '"grpc" is not a transport; expected "stdio" or "http"' });
  });
});

describe("the Docker server container under the bridge", () => {
  const image = { id: "sha256:abc", entrypoint: ["node", "/app/node_modules/srv/index.js"], cmd: ["/data"] };
  const base = { id, subnet, policyFile: "/p/br.yaml", image, secrets: {} };

  it("stdio (the default) keeps the image's command and mounts nothing of the bridge", () => {
    const spec = serverContainerSpec({ ...base, policy: policy({ image: { ref: "x" } }) });
    expect(spec.entrypoint).toEqual(image.entrypoint);
    expect(spec.cmd).toEqual(image.cmd);
    expect(spec.mounts?.some((m) => m.target === BRIDGE_MOUNT_FILE)).toBe(false);
  });

  it("http wraps the server's command in the bridge on a Unix socket, bundle read-only, socket folder shared", () => {
    const spec = serverContainerSpec({ ...base, policy: policy({ image: { ref: "x" } }), bridge: { file: "/pkg/dist/bridge/main.js", socketDir: "/state/run/mcp" } });
    expect(spec.entrypoint).toEqual(["node", BRIDGE_MOUNT_FILE, "--listen", `unix:${BRIDGE_SOCKET_DIR}/mcp.sock`, "--", "node", "/app/node_modules/srv/index.js", "/data"]);
    expect(spec.cmd).toEqual([]);
    expect(spec.mounts).toEqual(
      expect.arrayContaining([
        { source: "/pkg/dist/bridge/main.js", target: BRIDGE_MOUNT_FILE, readOnly: true },
        { source: "/state/run/mcp", target: BRIDGE_SOCKET_DIR, readOnly: false },
      ]),
    );
    // The hardening is unchanged.
    expect(spec).toMatchObject({ readonlyRootfs: true, capDrop: ["ALL"], user: "10001:10001" });
  });

  it("http without a known server command is a config error naming the policy", () => {
    let err: unknown;
    try {
      serverContainerSpec({ ...base, image: { id: "sha256:abc" }, policy: policy({ image: { ref: "x" } }), bridge: { file: "/b.js", socketDir: "/s" } });
    } catch (e) {
      err = e;
    }
    expect(isHangarError(err, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((err as Error).message).toMatch(/^policy br: runtime\.transport "http" needs the server's command/);
  });

  it("http with gVisor fails closed before anything is created", async () => {
    const calls: string[] = [];
    const implemented: Partial<ContainerEngine> = {
      inspectImage: async (ref) => (calls.push(`inspectImage ${ref}`), { id: "sha256:s", tags: [ref], repoDigests: [], labels: {} }),
      ociRuntimes: async () => (calls.push("ociRuntimes"), ["runc", "runsc"]),
    };
    const engine = new Proxy(implemented, {
      get: (target, p: string) =>
        target[p as keyof ContainerEngine] ??
        (async () => {
          calls.push(p);
          throw new Error(`unexpected engine call ${p}()`);
        }),
    }) as ContainerEngine;
    const err = await new Sandbox({ engine, logger: pino({ level: "silent" }) })
      .start({ policy: policy({ image: { ref: "x" }, isolation: "gvisor" }), policyFile: "/p/br.yaml", runtime: RuntimeConfigSchema.parse({}), transport: "http", image: { id: "sha256:abc" }, baselineFile: false })
      .catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_ISOLATION_UNAVAILABLE")).toBe(true);
    expect((err as Error).message).toContain('runtime.transport "http"');
    expect(calls).toEqual(["inspectImage hangar/sidecar:local", "ociRuntimes"]);
  });
});

describe("the Kubernetes server pod's command", () => {
  it("wraps server.command, or an npm package's bin found in the image, in the bridge on 8080", () => {
    expect(bridgedServerCommand(policy({ image: { ref: "x" }, command: ["/srv"], args: ["-v"] }))).toEqual(["node", BRIDGE_FILE, "--listen", `0.0.0.0:${MCP_PORT}`, "--", "/srv", "-v"]);
    expect(bridgedServerCommand(policy({ npm: { package: "@scope/pkg", version: "1.2.3" }, args: ["/data"] }))).toEqual(["node", BRIDGE_FILE, "--listen", "0.0.0.0:8080", "--npm", "@scope/pkg", "--", "/data"]);
    expect(() => bridgedServerCommand(policy({ image: { ref: "x" } }))).toThrow(/policy br: server\.command is needed in Kubernetes/);
  });

  it("the bridge resolves --npm to the package's bin, as the Docker image builder does", async () => {
    const modules = await mkdtemp(join(tmpdir(), "hangar-npm-"));
    dirs.push(modules);
    await mkdir(join(modules, "@scope/pkg"), { recursive: true });
    await writeFile(join(modules, "@scope/pkg/package.json"), JSON.stringify({ name: "@scope/pkg", bin: { pkg: "dist/index.js" } }));
    const resolved = await resolveBridgeCommand(parseBridgeArgs(["--listen", "0.0.0.0:8080", "--npm", "@scope/pkg", "--", "/data"]), modules);
    expect(resolved).toEqual({ listen: { kind: "tcp", host: "0.0.0.0", port: 8080 }, command: "node", args: [join(modules, "@scope/pkg/dist/index.js"), "/data"] });
    await expect(resolveBridgeCommand(parseBridgeArgs(["--listen", "0.0.0.0:8080", "--npm", "missing", "--"]), modules)).rejects.toThrow(/--npm missing: .*missing\/package\.json is not readable/);
  });
});
