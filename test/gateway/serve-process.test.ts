import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { queryAuditLog } from "../../src/audit/index.js";
import type { PolicyData } from "../../src/core/audit/audit-record.js";
import { hangar } from "../cli/capture-io.js";
import { approve, eventually, FAST_GATEWAY, project, textOf, type Project } from "./support/harness.js";

/** The real `hangar serve` process, as a client would run it. */
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const hangarArgs = (...args: string[]): string[] => ["--import", import.meta.resolve("tsx"), MAIN, ...args];

let p: Project;
beforeEach(async () => {
  p = project();
  const files = [await p.policy("alpha"), await p.policy("beta")];
  p.writeConfig({ servers: ["policies/alpha.yaml", "policies/beta.yaml"], identity: "dev", gateway: FAST_GATEWAY, rbac: { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } } });
  await approve(p.config, files);
});
afterEach(() => p[Symbol.dispose]());

describe("hangar serve (real process)", () => {
  it("over stdio: an SDK client lists and calls tools of two servers, then closing stdin shuts it down cleanly", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: hangarArgs("serve", "--config", p.config, "--stdio", "--unsandboxed"), stderr: "pipe", env: { ...process.env, HANGAR_LOG_LEVEL: "warn" } as Record<string, string> });
    let stderr = "";
    transport.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    const client = new Client({ name: "stdio-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      expect(client.getServerVersion()?.name).toBe("hangar");
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(["alpha__echo", "beta__echo", "alpha__add", "beta__slow"]));
      expect(textOf(await client.callTool({ name: "alpha__echo", arguments: { message: "one" } }))).toBe("alpha: one");
      expect(textOf(await client.callTool({ name: "beta__add", arguments: { a: 4, b: 5 } }))).toBe("9");
    } finally {
      await client.close();
    }
    expect(stderr).toMatch(/UNSANDBOXED/);
    const status = await eventually(async () => {
      const run = await hangar(["status", "--config", p.config, "--json"]);
      const parsed = JSON.parse(run.stdout) as { running: boolean; status: { stoppedAt?: string } };
      return parsed.status.stoppedAt !== undefined ? parsed : undefined;
    }, 10_000, "gateway stopped");
    expect(status.running).toBe(false);
    const records = queryAuditLog(`${p.dir}/.hangar/audit.db`, {}).records;
    const actions = records.filter((r) => r.kind === "policy").map((r) => (r.data as unknown as PolicyData).action);
    expect(actions).toEqual(expect.arrayContaining(["gateway-started", "gateway-stopped"]));
    expect(records.filter((r) => r.kind === "tool-call").map((r) => (r.data as { identity: string }).identity)).toEqual(["dev", "dev"]);
    const verify = await hangar(["audit", "verify", "--db", `${p.dir}/.hangar/audit.db`, "--unsigned"]);
    expect(verify.stdout).toMatch(/intact/);
  });

  it("over HTTP: a token-bearing SDK client works, /metrics answers, SIGTERM shuts it down with exit 0", async () => {
    const token = (await hangar(["token", "create", "--identity", "ci", "--config", p.config])).stdout.trim();
    const child = spawn(process.execPath, hangarArgs("serve", "--config", p.config, "--http", "127.0.0.1:0", "--unsandboxed"), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HANGAR_LOG_LEVEL: "warn" } });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    try {
      const url = await eventually(() => /serving MCP on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr)?.[1], 20_000, "serve to listen");
      const client = new Client({ name: "http-test", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(["alpha__echo", "beta__echo"]));
      expect(textOf(await client.callTool({ name: "beta__echo", arguments: { message: "over http" } }))).toBe("beta: over http");
      expect(textOf(await client.callTool({ name: "alpha__echo", arguments: { message: "over http" } }))).toBe("alpha: over http");
      await client.close();
      const metrics = await (await fetch(url.replace(/mcp$/, "metrics"), { headers: { authorization: `Bearer ${token}` } })).text();
      expect(metrics).toMatch(/hangar_tool_calls_total\{server="beta",tool="echo",outcome="ok"\} 1/);
      expect((await fetch(url, { method: "POST" })).status).toBe(401);
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(0);
  });
});
