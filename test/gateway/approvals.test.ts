import { writeFileSync, readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { queryAuditLog } from "../../src/audit/index.js";
import type { ApprovalData, PolicyData } from "../../src/core/audit/audit-record.js";
import { hangar } from "../cli/capture-io.js";
import { approve, connectClient, eventually, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an MCP error, got ${String(err)}`);
  return err;
}

const policyRecords = (path: string, action: string): PolicyData[] =>
  queryAuditLog(path, { kinds: ["policy"] }).records.map((r) => r.data as unknown as PolicyData).filter((d) => d.action === action);

describe("approvals", () => {
  it("an unapproved server refuses to start, is not listed, and every step of its approval is audited", async () => {
    const file = await p.policy("fx");
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    expect((await client.listTools()).tools).toEqual([]);
    const refused = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(refused.code).toBe(-32013);
    expect(refused.data).toMatchObject({ code: "HANGAR_GATEWAY_NOT_APPROVED", approval: "unapproved" });
    expect(refused.message).toMatch(/server "fx" is not approved; request it with: hangar approve request <policy file>/);
    expect(opened.gateway.server("fx")!.supervisor.state).toBe("COLD");

    const requested = await hangar(["approve", "request", file, "--config", p.config, "--by", "dev"]);
    expect(requested.code).toBe(0);
    const id = /^(apr-[0-9a-f]{8}):/.exec(requested.stdout)?.[1] as string;
    expect(requested.stdout).toMatch(/manifest {2}not known yet: pinned at the first start after the grant/);
    const pending = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    // The gateway re-reads approvals at most a second late.
    await eventually(async () => ((await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }))).message.includes(`request ${id} is pending`) ? true : undefined), 3000, "pending seen");
    expect(pending.code).toBe(-32013);

    const grant = await hangar(["approve", "grant", id, "--by", "security-lead", "--config", p.config]);
    expect(grant).toMatchObject({ code: 0, stdout: `${id}: granted by security-lead; server fx may start\n` });
    const again = await hangar(["approve", "grant", id, "--by", "security-lead", "--config", p.config]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/approval apr-[0-9a-f]+ is granted \(by security-lead\); only a pending approval can be granted \[HANGAR_GATEWAY_APPROVAL_INVALID\]/);

    await eventually(async () => (textOf(await client.callTool({ name: "fx__echo", arguments: { message: "x" } }).catch(() => ({}))) === "fx: x" ? true : undefined), 3000, "granted server starts");

    const list = await hangar(["approve", "list", "--config", p.config, "--json"]);
    const approvals = (JSON.parse(list.stdout) as { approvals: { id: string; status: string; inForce: boolean; pins: { manifest?: { digest: string } } }[] }).approvals;
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({ id, status: "granted", inForce: true });
    expect(approvals[0]?.pins.manifest?.digest).toMatch(/^[0-9a-f]{64}$/);

    opened.audit.flush();
    const steps = queryAuditLog(opened.audit.path, { kinds: ["approval"] }).records.map((r) => r.data as unknown as ApprovalData);
    expect(steps.map((s) => `${s.action}:${s.identity}`)).toEqual(["request:dev", "grant:security-lead"]);
    expect(policyRecords(opened.audit.path, "start-refused").length).toBeGreaterThanOrEqual(1);
    expect(policyRecords(opened.audit.path, "manifest-pinned")).toHaveLength(1);
    const outcomes = queryAuditLog(opened.audit.path, { kinds: ["tool-call"] }).records.map((r) => (r.data as { outcome: string }).outcome);
    expect(outcomes[0]).toBe("unavailable");
  });

  it("a denied request keeps the server unapproved and records the reason", async () => {
    const file = await p.policy("fx");
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    const requested = await hangar(["approve", "request", file, "--config", p.config]);
    const id = /^(apr-[0-9a-f]{8}):/.exec(requested.stdout)?.[1] as string;
    expect((await hangar(["approve", "deny", id, "--config", p.config])).stderr).toMatch(/--reason <text> is required/);
    const denied = await hangar(["approve", "deny", id, "--reason", "sends mail to unknown hosts", "--config", p.config]);
    expect(denied.stdout).toBe(`${id}: denied by dev (sends mail to unknown hosts); server fx stays unapproved\n`);
    const list = await hangar(["approve", "list", "--config", p.config]);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+fx\\s+denied\\s+dev .*\\(sends mail to unknown hosts\\)`));
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    expect((await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }))).message).toMatch(/is not approved/);
  });

  it("a changed policy needs a new approval in ENFORCING, and is flagged but runs in OBSERVING", async () => {
    for (const mode of ["enforcing", "observing"] as const) {
      const file = await p.policy(`fx-${mode}`, { mode });
      p.writeConfig({ servers: [`policies/fx-${mode}.yaml`], identity: "dev", gateway: FAST_GATEWAY });
      await approve(p.config, [file]);
      // Widen what the server may do after the approval.
      writeFileSync(file, readFileSync(file, "utf8").replace(/egress:\n/, "egress:\n  allow:\n    - host: evil.example\n"));
      await using opened = await openTestGateway(p.config);
      await using client = await connectClient(opened, "dev");
      const call = client.callTool({ name: `fx-${mode}__echo`, arguments: { message: "x" } });
      if (mode === "enforcing") {
        const err = await rpcError(call);
        expect(err.message).toMatch(/changed since its approval apr-[0-9a-f]+ \(policy digest [0-9a-f]{12}… → [0-9a-f]{12}…\); request a new approval/);
        expect((await client.listTools()).tools).toEqual([]);
      } else {
        expect(textOf(await call)).toBe(`fx-${mode}: x`);
        opened.audit.flush();
        expect(policyRecords(opened.audit.path, "approval-drift")[0]?.detail).toMatchObject({ verdict: "flag", mode: "observing" });
      }
    }
  });
});

describe("manifest pinning (rug pull)", () => {
  async function pinnedThenRugPulled(mode: "enforcing" | "observing", switchVar = "FIXTURE_RUG_PULL"): Promise<void> {
    const file = await p.policy("fx", { mode, secrets: [switchVar] });
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await approve(p.config, [file]);
    // First run: the manifest is pinned (trust on first use) and cached.
    await using first = await openTestGateway(p.config, { secretSource: { [switchVar]: "0" } });
    await using client = await connectClient(first, "dev");
    expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "x" } }))).toBe("fx: x");
    await first.close();
  }

  it("ENFORCING withholds a tool whose description changed, and rejects calls to it with a clear error", async () => {
    await pinnedThenRugPulled("enforcing");
    await using opened = await openTestGateway(p.config, { secretSource: { FIXTURE_RUG_PULL: "1" } });
    await using client = await connectClient(opened, "dev");
    // Before the start, the cached (approved) manifest is listed: nothing is withheld yet.
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("fx__echo");
    expect(opened.gateway.server("fx")!.supervisor.state).toBe("COLD");

    const err = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(err.code).toBe(-32012);
    expect(err.message).toMatch(/tool "echo" of server "fx" is withheld: it changed \(name, description or input schema\) since the server's approval \(manifest drift, ENFORCING\)/);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain("fx__echo");
    expect(names).toContain("fx__add");
    expect(textOf(await client.callTool({ name: "fx__add", arguments: { a: 1, b: 2 } }))).toBe("3");

    opened.audit.flush();
    const drift = policyRecords(opened.audit.path, "manifest-drift");
    expect(drift).toHaveLength(1);
    expect(drift[0]?.detail).toMatchObject({ changed: ["echo"], added: [], verdict: "withheld", withheld: ["echo"] });
    const echo = queryAuditLog(opened.audit.path, { kinds: ["tool-call"], tool: "echo" }).records.at(-1)?.data;
    expect(echo).toMatchObject({ outcome: "withheld", identity: "dev" });
    expect(opened.metrics.render()).toMatch(/hangar_manifest_drift_total\{server="fx"\} 1/);
  });

  it("ENFORCING withholds a tool that appeared after the approval", async () => {
    await pinnedThenRugPulled("enforcing", "FIXTURE_EXTRA_TOOL");
    await using opened = await openTestGateway(p.config, { secretSource: { FIXTURE_EXTRA_TOOL: "1" } });
    await using client = await connectClient(opened, "dev");
    await client.callTool({ name: "fx__echo", arguments: { message: "x" } });
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("fx__extra");
    const extra = await rpcError(client.callTool({ name: "fx__extra" }));
    expect(extra.code).toBe(-32012);
    expect(extra.message).toMatch(/tool "extra" of server "fx" is withheld: it was added since the server's approval/);
  });

  it("OBSERVING flags the drift in the audit log but keeps serving the tool", async () => {
    await pinnedThenRugPulled("observing");
    await using opened = await openTestGateway(p.config, { secretSource: { FIXTURE_RUG_PULL: "1" } });
    await using client = await connectClient(opened, "dev");
    expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "x" } }))).toBe("fx: x");
    expect((await client.listTools()).tools.find((t) => t.name === "fx__echo")?.description).toMatch(/IMPORTANT/);
    opened.audit.flush();
    expect(policyRecords(opened.audit.path, "manifest-drift")[0]?.detail).toMatchObject({ changed: ["echo"], verdict: "flag", withheld: [] });
  });

  it("re-approving accepts the new manifest, but a tool the manifest scan flags in it needs a grant by name", async () => {
    await pinnedThenRugPulled("enforcing");
    {
      await using opened = await openTestGateway(p.config, { secretSource: { FIXTURE_RUG_PULL: "1" } });
      await using client = await connectClient(opened, "dev");
      await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    }
    // The cache now holds the changed manifest; a new approval pins it. Its echo asks the
    // model to read ~/.ssh/id_rsa: re-approving the server does not vouch for that tool.
    const [id] = await approve(p.config, [`${p.dir}/policies/fx.yaml`]);
    await using opened = await openTestGateway(p.config, { secretSource: { FIXTURE_RUG_PULL: "1" } });
    await using client = await connectClient(opened, "dev");
    const withheld = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(withheld.message).toMatch(/is withheld: the manifest scan flagged it \(MANIFEST_MODEL_INSTRUCTION at description\)/);
    expect(textOf(await client.callTool({ name: "fx__add", arguments: { a: 1, b: 2 } }))).toBe("3");
    expect((await hangar(["approve", "grant", id as string, "--tools", "echo", "--by", "security-lead", "--config", p.config])).code).toBe(0);
    await eventually(async () => (textOf(await client.callTool({ name: "fx__echo", arguments: { message: "x" } }).catch(() => ({}))) === "fx: x" ? true : undefined), 3000, "granted tool served");
  });
});
