import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, expect, it } from "vitest";
import { stringify } from "yaml";
import { queryAuditLog } from "../../src/audit/index.js";
import type { PolicyData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { fixtureServerCommand } from "./support/fixture-server.js";
import { approve, connectClient, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

/**
 * tools.arguments through a real gateway (SDK client, fixture server over stdio): a value
 * outside what the policy allows is refused in ENFORCING with -32016 naming the rule and the
 * argument's path; the audit names the rule and never holds the value; OBSERVING forwards.
 */
let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

async function setup(mode: "enforcing" | "observing"): Promise<void> {
  const file = join(p.dir, "policies", "fx.yaml");
  const policy = {
    version: 1,
    name: "fx",
    server: { build: { context: "." }, command: await fixtureServerCommand(), env: { FIXTURE_NAME: "fx" } },
    egress: { mode, allow: [{ host: "api.allowed.test", ports: [443] }] },
    tools: {
      arguments: [
        { tool: "echo", path: "message", allow: { under: ["/data"] } },
        { tool: "whoami", path: "variable", deny: { match: ["*SECRET*", "*TOKEN*"] } },
      ],
    },
  };
  writeFileSync(file, stringify(policy));
  p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
  await approve(p.config, [file]);
}

it("ENFORCING refuses a value outside the rule with -32016 naming the rule and path; the audit never holds the value", async () => {
  await setup("enforcing");
  await using opened = await openTestGateway(p.config);
  await using client = await connectClient(opened, "dev");
  expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "/data/report.csv" } }))).toBe("fx: /data/report.csv");

  const err = await client.callTool({ name: "fx__echo", arguments: { message: "/data/../etc/passwd" } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  expect((err as McpError).code).toBe(-32016);
  expect((err as McpError).message).toBe('MCP error -32016: tool "echo" of server "fx" is refused by its policy: argument $.message is not under /data (tools.arguments[0]) (ENFORCING)');
  expect((err as McpError).data).toEqual({
    code: "HANGAR_GATEWAY_ARGUMENT_REFUSED",
    server: "fx",
    tool: "echo",
    permission: "tools.arguments[0]",
    rules: ["tools.arguments[0]"],
    violations: [{ rule: "tools.arguments[0]", path: "$.message", reason: "is not under /data" }],
  });
  const denied = await client.callTool({ name: "fx__whoami", arguments: { variable: "GITHUB_TOKEN" } }).then(
    () => undefined,
    (e: unknown) => e as McpError,
  );
  expect(denied?.data).toMatchObject({ violations: [{ rule: "tools.arguments[1]", path: "$.variable", reason: "matches what the rule denies" }] });

  opened.audit.flush();
  const records = queryAuditLog(opened.audit.path, {}).records;
  const rule = records.map((r) => r.data as unknown as PolicyData).filter((d) => d.action === "argument-rule");
  expect(rule[0]).toMatchObject({ server: "fx", tool: "echo", identity: "dev", detail: { verdict: "block", mode: "enforcing", violations: [{ rule: "tools.arguments[0]", path: "$.message", reason: "is not under /data" }] } });
  const calls = records.filter((r) => r.kind === "tool-call").map((r) => r.data as unknown as ToolCallData);
  expect(calls.map((c) => `${c.tool}:${c.outcome}`)).toEqual(["echo:ok", "echo:denied", "whoami:denied"]);
  expect(calls[1]?.arguments).toEqual({ message: "[refused: tools.arguments[0]]" });
  const everything = JSON.stringify(records);
  expect(everything).not.toContain("etc/passwd");
  expect(everything).not.toContain("GITHUB_TOKEN");
});

it("OBSERVING forwards the call and records would-block", async () => {
  await setup("observing");
  await using opened = await openTestGateway(p.config);
  await using client = await connectClient(opened, "dev");
  expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "/etc/hosts" } }))).toBe("fx: /etc/hosts");
  opened.audit.flush();
  const rule = queryAuditLog(opened.audit.path, { kinds: ["policy"] }).records.map((r) => r.data as unknown as PolicyData).filter((d) => d.action === "argument-rule");
  expect(rule).toEqual([expect.objectContaining({ tool: "echo", detail: expect.objectContaining({ verdict: "would-block", mode: "observing" }) })]);
});
