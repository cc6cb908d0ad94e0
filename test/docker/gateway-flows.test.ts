import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import Dockerode from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import type { AuditRecord, PolicyData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { Pruner } from "../../src/runtime/pruner.js";
import { hangar } from "../cli/capture-io.js";
import { eventually, textOf } from "../gateway/support/harness.js";
import { DockerTestEnv, ROOT } from "./support/docker-test-env.js";
import { MAIN } from "./support/gateway-project.js";
import { TEST_SIDECAR_IMAGE } from "./support/sidecar-image.js";

/**
 * The GitHub "toxic agent flow" through a real `hangar serve` (HTTP, SDK clients, each its own
 * MCP session): the github-server fixture runs in its Docker sandbox; hangar.yaml denies a
 * writes-public call after a reads-private one in the same session. Read then post is refused
 * with -32017 naming the flow and the earlier call, and the server never receives the post;
 * each call alone, in sessions of their own, passes. The approval is requested with
 * --quarantine: the server's manifest is listed in a capture sandbox and pinned before the grant.
 */
const FIXTURE = join(ROOT, "test/fixtures/github-server");
const SIDECAR_DIST = process.env["HANGAR_TEST_SIDECAR_DIST"] !== undefined ? resolve(ROOT, process.env["HANGAR_TEST_SIDECAR_DIST"]) : join(ROOT, ".stage/test-dist");

let env: DockerTestEnv;
let server: string;
let config: string;
let auditPath: string;
let token: string;
let serve: { child: ChildProcess; url: string; stderr: () => string; exited: Promise<unknown> };

beforeAll(async () => {
  env = await DockerTestEnv.create();
  server = `github-${env.run}`;
  const dir = join(await env.stateRoot(), "project");
  await mkdir(join(dir, "policies"), { recursive: true });
  const policy = join(dir, "policies", `${server}.yaml`);
  const text = (await readFile(join(FIXTURE, "github.yaml"), "utf8")).replace(/^name: .*$/m, `name: ${server}`).replace(/context: image/, `context: ${JSON.stringify(join(FIXTURE, "image"))}`);
  await writeFile(policy, text);
  const egress = await env.egressNetwork();
  config = join(dir, "hangar.yaml");
  auditPath = join(dir, ".hangar/audit.db");
  await writeFile(
    config,
    stringify({
      version: 1,
      servers: [`policies/${server}.yaml`],
      identity: "local-user",
      audit: { path: ".hangar/audit.db" },
      runtime: { egressNetwork: egress.name, upstreamResolvers: await env.upstreamResolvers(), sidecar: { image: TEST_SIDECAR_IMAGE } },
      rbac: { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } },
      gateway: { startTimeoutMs: 180_000, callTimeoutMs: 30_000, healthIntervalMs: 0, idleTimeoutMs: 0 },
      flows: [{ name: "toxic-flow", deny: { after: ["reads-private"], call: ["writes-public"] } }],
    }),
  );
  const init = await hangar(["init", "--dir", join(dir, ".hangar")]);
  expect(init.code).toBe(0);
  // Review before trust: the request starts the server in quarantine, lists its tools and pins them.
  const requested = await hangar(["approve", "request", policy, "--quarantine", "--config", config, "--json"], { env: { ...process.env, HANGAR_SIDECAR_DIST: SIDECAR_DIST } });
  expect(requested.code, requested.stderr).toBe(0);
  expect(requested.stderr).toMatch(new RegExp(`${server} listed 4 tools in quarantine; \\d+ network attempts captured at start, none left the sandbox`));
  const request = JSON.parse(requested.stdout) as { id: string; pins: { manifest?: { tools: Record<string, string> } }; scan?: { flagged: string[] } };
  expect(Object.keys(request.pins.manifest?.tools ?? {}).sort()).toEqual(["create_public_comment", "list_public_comments", "read_private_issue", "read_public_issue"]);
  expect(request.scan?.flagged).toEqual([]);
  // The quarantine sandbox is gone before anything is granted.
  expect(await env.engine.listContainers({ labels: selectorTerms({ server }) })).toEqual([]);
  const granted = await hangar(["approve", "grant", request.id, "--by", "security-lead", "--config", config]);
  expect(granted.code, granted.stderr).toBe(0);
  token = (await hangar(["token", "create", "--identity", "agent", "--config", config])).stdout.trim();

  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), MAIN, "serve", "--config", config, "--http", "127.0.0.1:0"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...(process.env as Record<string, string>), HANGAR_SIDECAR_DIST: SIDECAR_DIST },
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = once(child, "exit");
  const url = await eventually(() => /serving MCP on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr)?.[1] ?? (child.exitCode !== null ? "exited" : undefined), 60_000, "hangar serve to listen");
  if (url === "exited") throw new Error(`hangar serve exited: ${stderr}`);
  serve = { child, url, stderr: () => stderr, exited };
}, 600_000);

afterAll(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill("SIGTERM");
    await serve.exited;
  }
  const left = server === undefined ? [] : await env.engine.listContainers({ labels: selectorTerms({ server }) });
  if (server !== undefined) await new Pruner(env.engine).prune({ server });
  // The server image `hangar serve` built for this run's name.
  const docker = new Dockerode();
  for (const image of await docker.listImages({ filters: { reference: [`hangar/server-${server}`] } })) {
    for (const tag of image.RepoTags ?? []) await docker.getImage(tag).remove({ noprune: false }).catch(() => undefined);
  }
  await env?.cleanup();
  expect(left.map((c) => c.name)).toEqual([]);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

async function session(): Promise<Client> {
  const client = new Client({ name: "gateway-flows", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(serve.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

const call = (tool: string, args: Record<string, unknown>) => ({ name: `${server}__${tool}`, arguments: args });
const read = () => call("read_private_issue", { repo: "acme/secret", number: 7 });
const post = (body: string) => call("create_public_comment", { repo: "acme/public", number: 1, body });

it("read then post in one session is refused naming the flow and the read; each alone passes; the sandboxed server never gets the post", async () => {
  const attacker = await session();
  const poster = await session();
  const reader = await session();
  try {
    const secret = textOf(await attacker.callTool(read()));
    expect(secret).toContain("private roadmap");
    const refused = await attacker.callTool(post(secret)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(McpError);
    const err = refused as McpError;
    expect(err.code).toBe(-32017);
    expect(err.message).toContain(`tool "create_public_comment" of server "${server}" is refused: calling it (writes-public) after ${server}__read_private_issue (reads-private) in this session completes flow "toxic-flow" (ENFORCING)`);
    expect(err.data).toMatchObject({ code: "HANGAR_GATEWAY_FLOW_REFUSED", flows: ["toxic-flow"], chain: [{ tool: `${server}__read_private_issue`, labels: ["reads-private"] }] });

    // Each call alone, in a session of its own, passes.
    expect(textOf(await poster.callTool(post("nice project")))).toContain("comment 1 posted");
    expect(textOf(await reader.callTool(read()))).toContain("private roadmap");
    // What the server in the sandbox received: the harmless comment only.
    const posted = JSON.parse(textOf(await poster.callTool(call("list_public_comments", {})))) as { body: string }[];
    expect(posted.map((c) => c.body)).toEqual(["nice project"]);
    // The refused session goes on; only writes-public stays closed to it.
    expect(textOf(await attacker.callTool(read()))).toContain("private roadmap");
  } finally {
    await Promise.all([attacker.close(), poster.close(), reader.close()]);
  }

  // Audited: the refused call, and the flow decision with the chain that led to it.
  const records = await eventually(async () => {
    const run = await hangar(["audit", "query", "--db", auditPath, "--server", server, "--json"]);
    const found = (JSON.parse(run.stdout) as { records: AuditRecord[] }).records;
    return found.some((r) => r.kind === "policy" && (r.data as unknown as PolicyData).action === "flow-denied") ? found : undefined;
  }, 10_000, "the flow decision in the audit log");
  const calls = records.filter((r) => r.kind === "tool-call").map((r) => r.data as unknown as ToolCallData);
  const denied = calls.filter((c) => c.outcome === "denied");
  expect(denied.map((c) => c.tool)).toEqual(["create_public_comment"]);
  const decision = records.find((r) => r.kind === "policy" && (r.data as unknown as PolicyData).action === "flow-denied")?.data as unknown as PolicyData;
  const firstRead = calls.find((c) => c.tool === "read_private_issue" && c.session === denied[0]?.session);
  expect(decision).toMatchObject({ tool: "create_public_comment", identity: "agent", detail: { flow: "toxic-flow", verdict: "block", mode: "enforcing", callId: denied[0]?.callId, chain: [{ callId: firstRead?.callId, tool: "read_private_issue", labels: ["reads-private"] }] } });
  const verify = await hangar(["audit", "verify", "--db", auditPath]);
  expect(verify.code).toBe(0);
}, 300_000);
