import { gunzipSync } from "node:zlib";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_ALLOWED_HOST, DEMO_EVIL_HOST } from "../../src/cli/demo-upstreams.js";
import type { AuditRecord, EgressData, LifecycleData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { selectorTerms } from "../../src/docker/labels.js";
import type { ServerStatus } from "../../src/gateway/fleet-status.js";
import { hangar } from "../cli/capture-io.js";
import { eventually, textOf } from "../gateway/support/harness.js";
import { DockerTestEnv } from "./support/docker-test-env.js";
import { DATA_FILE_TEXT, openGatewayProject, startServeHttp, type GatewayProject, type ServeHttp } from "./support/gateway-project.js";

/**
 * `hangar serve` as clients run it, with its default launcher: every server in its Docker
 * sandbox. Two reference servers from npm (server-everything, server-filesystem with a
 * read-only data mount), approved first, driven by the official SDK client over stdio and
 * over HTTP; a server killed mid-session; and the forensics question answered from the
 * audit log of the real run.
 */

let env: DockerTestEnv;
let p: GatewayProject;
let E: string;
let F: string;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  p = await openGatewayProject(env);
  E = p.everything;
  F = p.filesystem;
}, 600_000);

afterAll(async () => {
  const left = await p?.cleanup();
  await env?.cleanup();
  // Each serve process removed its own sandboxes; the cleanup above found nothing to prune.
  expect(left).toEqual([]);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

const serverStatus = async (name: string): Promise<ServerStatus | undefined> => (await p.status()).status.servers.find((s) => s.name === name);

type Records = AuditRecord[];
const query = async (...args: string[]): Promise<Records> => {
  const run = await hangar(["audit", "query", "--db", p.auditPath, ...args, "--json"]);
  expect(run.code).toBe(0);
  return (JSON.parse(run.stdout) as { records: Records }).records;
};

describe("over stdio, the SDK's StdioClientTransport spawning hangar serve --stdio", () => {
  let client: Client;
  let stderr = "";

  beforeAll(async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: p.hangarArgs("serve", "--config", p.config, "--stdio"), env: p.childEnv(), stderr: "pipe" });
    transport.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    client = new Client({ name: "gateway-docker-test", version: "1.0.0" });
    await client.connect(transport);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
  }, 30_000);

  it("lists and calls the tools of both sandboxed servers", async () => {
    const started = Date.now();
    const names = (await client.listTools()).tools.map((t) => t.name);
    const listMs = Date.now() - started;
    expect(names).toEqual(expect.arrayContaining([`${E}__echo`, `${E}__gzip-file-as-resource`, `${F}__read_text_file`, `${F}__list_directory`]));
    expect(textOf(await client.callTool({ name: `${E}__echo`, arguments: { message: "through the sandbox" } }))).toContain("through the sandbox");
    expect(textOf(await client.callTool({ name: `${F}__read_text_file`, arguments: { path: "/data/hello.txt" } }))).toBe(DATA_FILE_TEXT);
    // The mount is read-only, as the policy says: the server's own write fails.
    const write = await client.callTool({ name: `${F}__write_file`, arguments: { path: "/data/new.txt", content: "x" } });
    expect(write.isError).toBe(true);

    // The status file is rewritten once a second.
    const { status } = await eventually(async () => {
      const read = await p.status();
      return read.status.servers.every((s) => s.state === "READY") ? read : undefined;
    }, 5_000, "the status file to say READY");
    expect(status.launcher).toEqual({ kind: "docker", sandboxed: true });
    for (const name of [E, F]) {
      expect(status.servers.find((s) => s.name === name)).toMatchObject({ state: "READY", approval: "approved", upstream: expect.stringMatching(new RegExp(`^sandbox ${name} run [0-9a-f]+ \\(sidecar 10\\.`)) });
      // A server container and its sidecar, both Hangar's.
      expect((await env.engine.listContainers({ labels: selectorTerms({ server: name }) })).map((c) => c.labels["hangar.role"]).sort()).toEqual(["server", "sidecar"]);
    }
    expect(stderr).not.toMatch(/UNSANDBOXED/);
    console.log(`first tools/list (both sandboxes started) took ${listMs} ms`);
  });

  it("attributes egress to the call in flight: audit query says what gzip-file-as-resource connected to, for whom, and when", async () => {
    // Past the linger of earlier calls (1 s), so only this test's calls are in flight below.
    await new Promise((r) => setTimeout(r, 1_100));
    const allowedBefore = await p.upstreams.allowed.count();
    const before = new Date().toISOString();
    // Node's fetch ignores HTTP_PROXY: the sidecar's transparent path carries it.
    const fetched = await client.callTool({ name: `${E}__gzip-file-as-resource`, arguments: { name: "report.gz", data: `http://${DEMO_ALLOWED_HOST}/report.csv`, outputType: "resource" } });
    const blob = (fetched.content as { resource?: { blob?: string } }[])[0]?.resource?.blob ?? "";
    expect(gunzipSync(Buffer.from(blob, "base64")).toString("utf8")).toBe(`hello from ${DEMO_ALLOWED_HOST}\n`);
    expect(await p.upstreams.allowed.count()).toBe(allowedBefore + 1);
    // Again past the linger: what follows is the second call's alone.
    await new Promise((r) => setTimeout(r, 1_100));
    const refused = await client.callTool({ name: `${E}__gzip-file-as-resource`, arguments: { name: "loot.gz", data: `http://${DEMO_EVIL_HOST}/steal`, outputType: "resource" } });
    expect(refused.isError).toBe(true);
    expect(await p.upstreams.evil.count()).toBe(0);
    const after = new Date().toISOString();

    // `hangar audit query --server S --tool T`: the calls and the egress attributed to them.
    const records = await eventually(async () => {
      const found = await query("--server", E, "--tool", "gzip-file-as-resource");
      const egress = found.filter((r) => r.kind === "egress").map((r) => (r.data as unknown as EgressData).event);
      // (The connection's close event comes when fetch drops its idle keep-alive socket, seconds
      // after the call: past the attribution window, so it belongs to no call.)
      const connected = egress.some((e) => e.type === "egress" && e.name === DEMO_ALLOWED_HOST && e.phase === "decide");
      const blocked = egress.some((e) => e.type === "dns" && e.name === DEMO_EVIL_HOST && e.verdict === "block");
      return connected && blocked ? found : undefined;
    }, 15_000, "the egress records");
    const calls = records.filter((r) => r.kind === "tool-call").map((r) => r.data as unknown as ToolCallData);
    expect(calls.map((c) => [c.tool, c.identity])).toEqual([
      ["gzip-file-as-resource", "local-user"],
      ["gzip-file-as-resource", "local-user"],
    ]);
    const [allowedCall, refusedCall] = calls;
    const egress = records.filter((r) => r.kind === "egress");
    const decide = egress.find((r) => {
      const e = (r.data as unknown as EgressData).event;
      return e.type === "egress" && e.name === DEMO_ALLOWED_HOST && e.phase === "decide";
    });
    expect((decide?.data as unknown as EgressData).event).toMatchObject({ verdict: "allow", port: 80, path: "transparent", ip: p.upstreams.allowed.ip });
    expect((decide?.data as unknown as EgressData).attribution.calls).toEqual([expect.objectContaining({ callId: allowedCall?.callId, tool: "gzip-file-as-resource", identity: "local-user" })]);
    // When: the sidecar's own timestamp, within the call.
    expect(decide?.ts ?? "").toSatisfy((ts: string) => ts >= before && ts <= after);
    const dnsBlock = egress.find((r) => (r.data as unknown as EgressData).event.name === DEMO_EVIL_HOST);
    expect((dnsBlock?.data as unknown as EgressData).attribution.calls).toEqual([expect.objectContaining({ callId: refusedCall?.callId, identity: "local-user" })]);

    // The same answer for a person reading the terminal.
    const text = await hangar(["audit", "query", "--db", p.auditPath, "--server", E, "--tool", "gzip-file-as-resource", "--kind", "egress"]);
    // The request as the sidecar saw it: method and path template, never a query value.
    expect(text.stdout).toMatch(new RegExp(`${E} → api\\.allowed\\.test:80 GET /report\\.csv allow .*during gzip-file-as-resource by local-user`));
    expect(text.stdout).toMatch(new RegExp(`${E} → evil\\.test dns A block \\[undeclared-host\\] during gzip-file-as-resource by local-user`));
    // hangar status counts the verdicts too (its file lags up to a second).
    await eventually(async () => ((await serverStatus(E))?.egress.block ?? 0) > 0 || undefined, 5_000, "a block in hangar status");
  });

  it("a server killed mid-session goes DEGRADED, restarts in a fresh sandbox and is READY again", async () => {
    const before = await serverStatus(E);
    const [victim] = await env.engine.listContainers({ labels: selectorTerms({ server: E, role: "server" }) });
    expect(victim).toBeDefined();
    const killedAt = Date.now();
    await env.engine.killContainer(victim!.id, "SIGKILL");

    const degraded = await eventually(async () => {
      const s = await serverStatus(E);
      return s?.state === "DEGRADED" ? s : undefined;
    }, 10_000, "DEGRADED");
    expect(degraded.lastError?.message).toMatch(/exited \(exited, code 137\)/);
    const ready = await eventually(async () => {
      const s = await serverStatus(E);
      return s?.state === "READY" && s.restarts === (before?.restarts ?? 0) + 1 ? s : undefined;
    }, 30_000, "READY again");
    const recoveredMs = Date.now() - killedAt;
    expect(ready.upstream).not.toBe(before?.upstream);
    expect(textOf(await client.callTool({ name: `${E}__echo`, arguments: { message: "after the crash" } }))).toContain("after the crash");
    // The other server never noticed.
    expect((await serverStatus(F))?.restarts).toBe(0);
    // The old sandbox is gone: one server container, a fresh one.
    const now = await env.engine.listContainers({ labels: selectorTerms({ server: E, role: "server" }) });
    expect(now.map((c) => c.id)).not.toContain(victim!.id);
    expect(now).toHaveLength(1);

    const lifecycle = (await query("--server", E, "--kind", "lifecycle")).map((r) => r.data as unknown as LifecycleData);
    const actions = lifecycle.map((d) => d.action);
    // The runtime's report of the exit, then the supervisor's transitions, in order.
    expect(lifecycle.find((d) => d.action === "server-exited")?.detail).toMatchObject({ exitCode: 137 });
    const degradedAt = actions.lastIndexOf("degraded");
    const restartingAt = actions.indexOf("restarting", degradedAt);
    expect(degradedAt).toBeGreaterThan(-1);
    expect(restartingAt).toBeGreaterThan(degradedAt);
    expect(actions.indexOf("ready", restartingAt)).toBeGreaterThan(restartingAt);
    console.log(`killed server back to READY in ${recoveredMs} ms`);
  });

  it("closing stdin shuts the gateway down and removes both sandboxes", async () => {
    const started = Date.now();
    await client.close();
    const { status } = await eventually(async () => {
      const s = await p.status();
      return s.status.stoppedAt !== undefined && !s.running ? s : undefined;
    }, 15_000, "the gateway to stop");
    console.log(`stdio gateway shutdown (two sandboxes) took ${Date.now() - started} ms`);
    expect(status.servers.map((s) => s.state)).toEqual(["DEAD", "DEAD"]);
    expect(await p.leftovers()).toEqual([]);
    expect(stderr).not.toMatch(/teardown step failed/);
  });
});

describe("over streamable HTTP with a bearer token", () => {
  let serve: ServeHttp;
  let token: string;

  beforeAll(async () => {
    token = (await hangar(["token", "create", "--identity", "ci-bot", "--config", p.config])).stdout.trim();
    serve = await startServeHttp(p);
  }, 60_000);

  afterAll(async () => {
    if (serve?.child.exitCode === null) await serve.stop();
  }, 30_000);

  it("lists and calls the tools of both sandboxed servers as the token's identity", async () => {
    const client = new Client({ name: "gateway-docker-http", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(serve.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining([`${E}__echo`, `${F}__read_text_file`]));
      expect(textOf(await client.callTool({ name: `${E}__get-sum`, arguments: { a: 20, b: 22 } }))).toContain("42");
      expect(textOf(await client.callTool({ name: `${F}__read_text_file`, arguments: { path: "/data/hello.txt" } }))).toBe(DATA_FILE_TEXT);
    } finally {
      await client.close();
    }
    // The gateway writes the log in 10 ms batches.
    const calls = await eventually(async () => {
      const found = (await query("--identity", "ci-bot", "--kind", "tool-call")).map((r) => r.data as unknown as ToolCallData);
      return found.length === 2 ? found : undefined;
    }, 5_000, "both calls in the log");
    expect(calls.map((c) => `${c.server}/${c.tool}:${c.outcome}`)).toEqual([`${E}/get-sum:ok`, `${F}/read_text_file:ok`]);
  });

  it("answers 401 to a missing, malformed or unknown token", async () => {
    const init = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
    const post = (authorization?: string): Promise<Response> =>
      fetch(serve.url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(authorization !== undefined ? { authorization } : {}) }, body: init });
    for (const authorization of [undefined, "Bearer hgr_not-a-token", `Basic ${token}`, `Bearer ${token}x`]) {
      const res = await post(authorization);
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
    // The SDK client with a wrong token does not get in either.
    const intruder = new Client({ name: "intruder", version: "1.0.0" });
    await expect(intruder.connect(new StreamableHTTPClientTransport(new URL(serve.url), { requestInit: { headers: { authorization: "Bearer hgr_wrong" } } }))).rejects.toThrow(/unknown bearer token/);
    expect((await post(`Bearer ${token}`)).status).toBe(200);
  });

  it("SIGTERM: exit 0, both sandboxes removed", async () => {
    expect(await serve.stop()).toBe(0);
    expect(await p.leftovers()).toEqual([]);
    expect(serve.stderr()).not.toMatch(/teardown step failed/);
  });
});

it("the audit log of both runs verifies against the signing key", async () => {
  const verify = await hangar(["audit", "verify", "--db", p.auditPath]);
  expect(verify.stdout + verify.stderr).toMatch(/intact/);
  expect(verify.code).toBe(0);
});
