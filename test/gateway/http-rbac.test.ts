import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { queryAuditLog } from "../../src/audit/index.js";
import type { PolicyData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { HttpEndpoint } from "../../src/gateway/http-endpoint.js";
import { TokenStore } from "../../src/gateway/token-file.js";
import { silentLogger } from "../../src/log.js";
import { hangar } from "../cli/capture-io.js";
import { approve, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

async function createToken(identity: string): Promise<string> {
  const run = await hangar(["token", "create", "--identity", identity, "--config", p.config]);
  expect(run.code).toBe(0);
  return run.stdout.trim();
}

async function httpClient(url: string, token: string): Promise<Client & AsyncDisposable> {
  const client = new Client({ name: "http-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.close() });
}

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an MCP error, got ${String(err)}`);
  return err;
}

describe("HTTP endpoint with bearer tokens and RBAC", () => {
  it("serves two servers over streamable HTTP; a role can call only its globs; wrong or missing tokens get 401; every denial is audited", async () => {
    const files = [await p.policy("alpha"), await p.policy("beta")];
    p.writeConfig({
      servers: ["policies/alpha.yaml", "policies/beta.yaml"],
      identity: "dev",
      gateway: FAST_GATEWAY,
      rbac: {
        roles: { reader: { allow: ["alpha__echo", "beta__*"], deny: ["beta__crash"] }, admin: { allow: ["*"] } },
        bindings: { alice: ["reader"], root: ["admin"] },
      },
    });
    await approve(p.config, files);
    const alice = await createToken("alice");
    const root = await createToken("root");
    expect(alice).toMatch(/^hgr_[A-Za-z0-9_-]{43}$/);
    const tokenFile = join(p.dir, ".hangar/tokens.json");
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(tokenFile, "utf8")).not.toContain(alice.slice(4));

    await using opened = await openTestGateway(p.config);
    const tokens = new TokenStore(tokenFile);
    await tokens.load();
    const http = new HttpEndpoint({ gateway: opened.gateway, tokens, metrics: opened.metrics, audit: opened.audit, version: "0.0.0-test", logger: silentLogger() });
    const url = await http.listen("127.0.0.1", 0);
    try {
      // No token, a wrong token, a malformed header: 401 before anything runs.
      const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } };
      const post = (headers: Record<string, string>): Promise<Response> =>
        fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers }, body: JSON.stringify(init) });
      const missing = await post({});
      expect(missing.status).toBe(401);
      expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="hangar"');
      const wrong = await post({ authorization: `Bearer ${alice}x` });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
      expect((await post({ authorization: "Basic abc" })).status).toBe(401);
      expect((await fetch(url.replace("/mcp", "/metrics"))).status).toBe(401);

      await using asAlice = await httpClient(url, alice);
      const listed = (await asAlice.listTools()).tools.map((t) => t.name).sort();
      expect(listed).toEqual(["alpha__echo", "beta__add", "beta__echo", "beta__fail", "beta__pid", "beta__slow", "beta__whoami"]);
      expect(textOf(await asAlice.callTool({ name: "alpha__echo", arguments: { message: "hi" } }))).toBe("alpha: hi");
      expect(textOf(await asAlice.callTool({ name: "beta__add", arguments: { a: 1, b: 1 } }))).toBe("2");

      const denied = await rpcError(asAlice.callTool({ name: "alpha__add", arguments: { a: 1, b: 1 } }));
      expect(denied.code).toBe(-32010);
      expect(denied.message).toMatch(/identity "alice" lacks permission "alpha__add": none of its roles \(reader\) allows it/);
      expect(denied.data).toMatchObject({ code: "HANGAR_GATEWAY_DENIED", permission: "alpha__add", identity: "alice" });
      const deniedByRule = await rpcError(asAlice.callTool({ name: "beta__crash" }));
      expect(deniedByRule.message).toMatch(/role "reader" denies it \(deny "beta__crash"\)/);

      await using asRoot = await httpClient(url, root);
      expect(textOf(await asRoot.callTool({ name: "alpha__add", arguments: { a: 20, b: 22 } }))).toBe("42");

      // A session belongs to whoever opened it.
      const sessionId = (asAlice.transport as StreamableHTTPClientTransport).sessionId as string;
      const hijack = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${root}`, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
      });
      expect(hijack.status).toBe(403);

      const metrics = await fetch(url.replace("/mcp", "/metrics"), { headers: { authorization: `Bearer ${root}` } });
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
      const text = await metrics.text();
      expect(text).toMatch(/hangar_tool_calls_total\{server="alpha",tool="echo",outcome="ok"\} 1/);
      expect(text).toMatch(/hangar_tool_calls_total\{server="alpha",tool="add",outcome="denied"\} 1/);
      expect(text).toMatch(/hangar_tool_call_duration_seconds_count\{server="alpha",tool="add"\} 1/);
      expect(text).toMatch(/hangar_server_state\{server="alpha",state="READY"\} 1/);
    } finally {
      await http.close();
    }

    opened.audit.flush();
    const denials = queryAuditLog(opened.audit.path, { kinds: ["tool-call"], identity: "alice" })
      .records.map((r) => r.data as unknown as ToolCallData)
      .filter((d) => d.outcome === "denied");
    expect(denials.map((d) => `${d.server}/${d.tool}: ${d.error}`)).toEqual([
      'alpha/add: identity "alice" lacks permission "alpha__add": none of its roles (reader) allows it',
      'beta/crash: identity "alice" lacks permission "beta__crash": role "reader" denies it (deny "beta__crash")',
    ]);
    const authFailures = queryAuditLog(opened.audit.path, { kinds: ["policy"] })
      .records.map((r) => r.data as unknown as PolicyData)
      .filter((d) => d.action === "auth-failed")
      .map((d) => d.detail?.["reason"]);
    expect(authFailures).toEqual(["missing bearer token", "unknown bearer token", "malformed Authorization header", "missing bearer token"]);
  });

  it("applies the policy's own tool rules and rate limit, and says why", async () => {
    const file = await p.policy("fx", { tools: { deny: ["crash"], rateLimit: { perMinute: 2 } } });
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await approve(p.config, [file]);
    await using opened = await openTestGateway(p.config);
    const { connectClient } = await import("./support/harness.js");
    await using client = await connectClient(opened, "dev");
    const offered = (await client.listTools()).tools.map((t) => t.name);
    expect(offered).toContain("fx__echo");
    expect(offered).not.toContain("fx__crash");
    const ruled = await rpcError(client.callTool({ name: "fx__crash" }));
    expect(ruled.message).toMatch(/tool "crash" of server "fx" is refused by its policy \(tools.deny "crash"\)/);
    await client.callTool({ name: "fx__echo", arguments: { message: "1" } });
    await client.callTool({ name: "fx__echo", arguments: { message: "2" } });
    const limited = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "3" } }));
    expect(limited.code).toBe(-32011);
    expect(limited.message).toMatch(/server "fx" allows 2 tool calls per minute \(tools.rateLimit.perMinute\); retry in \d+ s/);
    expect(limited.data).toMatchObject({ code: "HANGAR_GATEWAY_RATE_LIMITED" });
  });
});
