import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { queryAuditLog } from "../../src/audit/index.js";
import type { PolicyData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { hangar } from "../cli/capture-io.js";
import { approve, connectClient, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

/**
 * Composition constraints through a real gateway (SDK clients, the github-server fixture over
 * stdio): hangar.yaml's flows over the tools' policy labels, decided per client session. The
 * GitHub toxic flow (read a private issue, then post publicly) is refused in ENFORCING, each
 * call alone passes, and OBSERVING records would-block; every decision is audited with the
 * chain of calls that led to it.
 */
const SERVER = fileURLToPath(new URL("../fixtures/github-server/image/server.mjs", import.meta.url));
const LABELS = { read_private_issue: ["reads-private"], read_public_issue: ["reads-untrusted"], create_public_comment: ["writes-public"] };
const TOXIC = { name: "toxic-flow", deny: { after: ["reads-private"], call: ["writes-public"] } };

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

function githubPolicy(name: string, mode: "enforcing" | "observing" = "enforcing", labels: Record<string, string[]> = LABELS): string {
  const file = join(p.dir, "policies", `${name}.yaml`);
  writeFileSync(file, stringify({ version: 1, name, server: { build: { context: "." }, command: [process.execPath, SERVER] }, egress: { mode }, tools: { labels } }));
  return file;
}

async function setup(flows: unknown[], mode: "enforcing" | "observing" = "enforcing"): Promise<void> {
  const file = githubPolicy("gh", mode);
  p.writeConfig({ servers: ["policies/gh.yaml"], identity: "dev", gateway: FAST_GATEWAY, flows });
  await approve(p.config, [file]);
}

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an MCP error, got ${String(err)}`);
  return err;
}

const flowRecords = (path: string): PolicyData[] =>
  queryAuditLog(path, { kinds: ["policy"] })
    .records.map((r) => r.data as unknown as PolicyData)
    .filter((d) => d.action === "flow-denied");

const read = { name: "gh__read_private_issue", arguments: { repo: "acme/secret", number: 7 } };
const post = { name: "gh__create_public_comment", arguments: { repo: "acme/public", number: 1, body: "leaked" } };

describe("flows: the GitHub toxic flow", () => {
  it("ENFORCING refuses read-then-post with -32017 naming the flow and the earlier call; nothing is posted", async () => {
    await setup([TOXIC]);
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev", "session-a");

    expect(textOf(await client.callTool(read))).toContain("private roadmap");
    const err = await rpcError(client.callTool(post));
    expect(err.code).toBe(-32017);
    expect(err.message).toBe(
      'MCP error -32017: tool "create_public_comment" of server "gh" is refused: calling it (writes-public) after gh__read_private_issue (reads-private) in this session completes flow "toxic-flow" (ENFORCING)',
    );
    expect(err.data).toMatchObject({
      code: "HANGAR_GATEWAY_FLOW_REFUSED",
      server: "gh",
      tool: "create_public_comment",
      permission: "flows.toxic-flow",
      flows: ["toxic-flow"],
      labels: ["writes-public"],
      chain: [{ tool: "gh__read_private_issue", labels: ["reads-private"], callId: expect.any(String) }],
    });
    // The server never saw the post.
    expect(textOf(await client.callTool({ name: "gh__list_public_comments", arguments: {} }))).toBe("[]");

    opened.audit.flush();
    const calls = queryAuditLog(opened.audit.path, { kinds: ["tool-call"] }).records.map((r) => r.data as unknown as ToolCallData);
    expect(calls.map((c) => `${c.tool}:${c.outcome}`)).toEqual(["read_private_issue:ok", "create_public_comment:denied", "list_public_comments:ok"]);
    const [decision] = flowRecords(opened.audit.path);
    expect(decision).toMatchObject({
      server: "gh",
      tool: "create_public_comment",
      identity: "dev",
      detail: { session: "session-a", flow: "toxic-flow", labels: ["writes-public"], verdict: "block", mode: "enforcing", callId: calls[1]?.callId },
    });
    expect((decision?.detail as { chain: unknown[] }).chain).toEqual([{ callId: calls[0]?.callId, server: "gh", tool: "read_private_issue", labels: ["reads-private"], at: expect.stringMatching(/^\d{4}-/) }]);
  });

  it("each call alone passes; posting before reading passes; another session is not tainted", async () => {
    await setup([TOXIC]);
    await using opened = await openTestGateway(p.config);
    await using poster = await connectClient(opened, "dev", "session-post");
    expect(textOf(await poster.callTool(post))).toContain("comment 1 posted");
    expect(textOf(await poster.callTool(read))).toContain("private roadmap");

    await using reader = await connectClient(opened, "dev", "session-read");
    expect(textOf(await reader.callTool(read))).toContain("private roadmap");
    await using other = await connectClient(opened, "dev", "session-other");
    expect(textOf(await other.callTool(post))).toContain("comment 2 posted");
    // The reader's session is the tainted one.
    expect((await rpcError(reader.callTool(post))).code).toBe(-32017);
    opened.audit.flush();
    expect(flowRecords(opened.audit.path).map((d) => (d.detail as { session: string }).session)).toEqual(["session-read"]);
  });

  it("the session's state ends with the session: a new session after close starts clean", async () => {
    await setup([TOXIC]);
    await using opened = await openTestGateway(p.config);
    const first = await connectClient(opened, "dev", "session-1");
    await first.callTool(read);
    await first.close();
    await using again = await connectClient(opened, "dev", "session-1");
    expect(textOf(await again.callTool(post))).toContain("posted");
  });

  it("the lethal trifecta needs every `after` label: private alone passes, private and untrusted together refuse", async () => {
    await setup([{ name: "lethal-trifecta", deny: { after: ["reads-private", "reads-untrusted"], call: ["sends-external", "writes-public"] } }]);
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    await client.callTool(read);
    expect(textOf(await client.callTool(post))).toContain("posted");
    await client.callTool({ name: "gh__read_public_issue", arguments: { repo: "acme/public", number: 1 } });
    const err = await rpcError(client.callTool(post));
    expect(err.message).toContain("after gh__read_private_issue (reads-private), then gh__read_public_issue (reads-untrusted) in this session completes flow \"lethal-trifecta\"");
  });

  it("OBSERVING forwards the post and records would-block with the chain", async () => {
    await setup([TOXIC], "observing");
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    await client.callTool(read);
    expect(textOf(await client.callTool(post))).toContain("posted");
    opened.audit.flush();
    expect(flowRecords(opened.audit.path)).toEqual([expect.objectContaining({ tool: "create_public_comment", detail: expect.objectContaining({ flow: "toxic-flow", verdict: "would-block", mode: "observing" }) })]);
  });

  it("a flow's own mode overrides the server's: an observing flow on an enforcing server records only", async () => {
    await setup([{ ...TOXIC, mode: "observing" }]);
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    await client.callTool(read);
    expect(textOf(await client.callTool(post))).toContain("posted");
  });
});

describe("flows in hangar.yaml", () => {
  it("config check rejects an unknown label and a duplicate flow name, each with its path; warns about a flow no tool can fire", async () => {
    githubPolicy("gh");
    p.writeConfig({
      servers: ["policies/gh.yaml"],
      flows: [TOXIC, { name: "toxic-flow", deny: { after: ["reads-secret"], call: ["writes-public"] } }],
    });
    const bad = await hangar(["config", "check", "--config", p.config]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/flows\[1\]\.name: flow name "toxic-flow" is already used by flows\[0\]/);
    expect(bad.stdout + bad.stderr).toMatch(/flows\[1\]\.deny\.after\[0\]: "reads-secret" is not a tool label; expected one of reads-private, reads-untrusted, writes-public, sends-external, executes/);

    p.writeConfig({ servers: ["policies/gh.yaml"], flows: [TOXIC, { name: "no-exec", deny: { after: ["writes-public"], call: ["executes"] } }] });
    const warned = await hangar(["config", "check", "--config", p.config]);
    expect(warned.code).toBe(0);
    expect(warned.stdout + warned.stderr).toMatch(/flows\[1\]: flow "no-exec" can never fire: no configured server's tools\.labels gives any tool executes/);
    expect(warned.stdout + warned.stderr).not.toMatch(/toxic-flow/);
  });

  it("policy lint rejects an unknown tool label with its path", async () => {
    const file = githubPolicy("gh", "enforcing", { read_private_issue: ["reads-secrets"] });
    const lint = await hangar(["policy", "lint", file]);
    expect(lint.code).not.toBe(0);
    expect(lint.stdout + lint.stderr).toMatch(/tools\.labels\.read_private_issue\[0\]: "reads-secrets" is not a tool label/);
  });
});
