import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { queryAuditLog } from "../../src/audit/index.js";
import type { EgressData, ToolCallData } from "../../src/core/audit/audit-record.js";
import { hangar } from "../cli/capture-io.js";
import { egressEvent, EventInjectingLauncher } from "./support/event-launcher.js";
import { approve, connectClient, eventually, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

describe("audit and forensics", () => {
  it('answers "what did tool T of server S connect to, for which identity, and when"', async () => {
    const file = await p.policy("mailer");
    p.writeConfig({ servers: ["policies/mailer.yaml"], identity: "dev", gateway: FAST_GATEWAY, rbac: { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } } });
    await approve(p.config, [file]);
    const launcher = new EventInjectingLauncher();
    await using opened = await openTestGateway(p.config, { launcher });
    await using alice = await connectClient(opened, "alice", "s-alice");
    await alice.callTool({ name: "mailer__echo", arguments: { message: "warm up" } });
    // Past the warm-up call's linger (1 s), so only the slow call is in flight below.
    await new Promise((r) => setTimeout(r, 1100));

    // While alice's slow call runs, the sidecar reports a connection; after it, another one.
    const slow = alice.callTool({ name: "mailer__slow", arguments: { ms: 400 } });
    await eventually(() => (opened.gateway.server("mailer")!.supervisor.snapshot().callsInFlight > 0 ? true : undefined));
    launcher.emit("mailer", egressEvent("mailer", { name: "smtp.attacker.test", sni: "smtp.attacker.test", verdict: "would-block", reasons: ["undeclared-host"] }));
    launcher.emit("mailer", egressEvent("mailer", { phase: "close", name: "smtp.attacker.test", verdict: "would-block", reasons: ["undeclared-host"], bytesUp: 1200, bytesDown: 80, durationMs: 30 }));
    expect(textOf(await slow)).toBe("slept 400 ms");
    await new Promise((r) => setTimeout(r, 1500));
    launcher.emit("mailer", egressEvent("mailer", { name: "api.allowed.test" }));

    await eventually(() => {
      opened.audit.flush();
      return queryAuditLog(opened.audit.path, { kinds: ["egress"] }).records.length === 3 ? true : undefined;
    });

    const run = await hangar(["audit", "query", "--db", opened.audit.path, "--server", "mailer", "--tool", "slow", "--kind", "egress", "--json"]);
    expect(run.code).toBe(0);
    const records = (JSON.parse(run.stdout) as { records: { ts: string; data: EgressData }[] }).records;
    expect(records).toHaveLength(2);
    const [decide] = records;
    expect(decide?.data.event).toMatchObject({ name: "smtp.attacker.test", verdict: "would-block", phase: "decide" });
    expect(decide?.data.attribution.calls).toEqual([expect.objectContaining({ tool: "slow", identity: "alice", session: "s-alice" })]);
    const call = queryAuditLog(opened.audit.path, { kinds: ["tool-call"], tool: "slow" }).records[0]?.data as unknown as ToolCallData;
    expect(decide?.data.attribution.calls[0]?.callId).toBe(call.callId);
    // The egress after the call (past the linger) is attributed to nobody.
    const later = queryAuditLog(opened.audit.path, { kinds: ["egress"] }).records.at(-1)?.data as unknown as EgressData;
    expect(later.attribution.calls).toEqual([]);

    const text = await hangar(["audit", "query", "--db", opened.audit.path, "--server", "mailer", "--tool", "slow", "--identity", "alice", "--kind", "egress"]);
    expect(text.stdout).toMatch(/mailer → smtp\.attacker\.test:443 would-block \[undeclared-host\] during slow by alice/);

    const status = opened.status().servers[0];
    expect(status?.egress).toEqual({ allow: 1, flag: 0, block: 0, "would-block": 1 });
    expect(opened.metrics.render()).toMatch(/hangar_egress_events_total\{server="mailer",host="smtp.attacker.test",verdict="would-block"\} 1/);
  });

  it("keeps secrets out of the audit log: by key name in arguments, by value in results", async () => {
    const file = await p.policy("fx", { secrets: ["FX_API_KEY"] });
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await approve(p.config, [file]);
    await using opened = await openTestGateway(p.config, { secretSource: { FX_API_KEY: "sk-live-0123456789" } });
    await using client = await connectClient(opened, "dev");
    expect(textOf(await client.callTool({ name: "fx__whoami", arguments: { variable: "FX_API_KEY" } }))).toBe("sk-live-0123456789");
    await client.callTool({ name: "fx__echo", arguments: { message: "token sk-live-0123456789", password: "hunter2" } }).catch(() => undefined);
    opened.audit.flush();
    const raw = JSON.stringify(queryAuditLog(opened.audit.path, {}).records);
    expect(raw).not.toContain("sk-live-0123456789");
    expect(raw).not.toContain("hunter2");
    expect(raw).toContain("[redacted]");
  });

  it("keeps a status file that hangar status reads, and marks it stopped on shutdown", async () => {
    const files = [await p.policy("alpha"), await p.policy("beta")];
    p.writeConfig({ servers: ["policies/alpha.yaml", "policies/beta.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await approve(p.config, files);
    const opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    await client.callTool({ name: "alpha__echo", arguments: { message: "x" } });
    await client.callTool({ name: "alpha__fail" });

    const running = await eventually(async () => {
      const run = await hangar(["status", "--config", p.config, "--json"]);
      const parsed = JSON.parse(run.stdout) as { running: boolean; status: { servers: { name: string; state: string; calls: { total: number } }[] } };
      return parsed.status.servers.find((s) => s.name === "alpha")?.calls.total === 2 ? parsed : undefined;
    }, 5000, "status file updated");
    expect(running.running).toBe(true);
    expect(running.status.servers.map((s) => `${s.name}:${s.state}`)).toEqual(["alpha:READY", "beta:COLD"]);

    const table = await hangar(["status", "--config", p.config]);
    expect(table.stdout).toMatch(/^gateway pid \d+ serving stdio since .* \(local-process, UNSANDBOXED\)/);
    expect(table.stdout).toMatch(/\nalpha\s+READY\s+\d+s\s+2 \(1 ok, 1 err, 0 denied\)\s+0\/0\/0\/0\s+approved\s+closed\s+-/);

    await opened.close();
    const after = await hangar(["status", "--config", p.config, "--json"]);
    const stopped = JSON.parse(after.stdout) as { running: boolean; status: { stoppedAt?: string; servers: { state: string }[] } };
    expect(stopped.running).toBe(false);
    expect(stopped.status.stoppedAt).toBeDefined();
    expect(stopped.status.servers.map((s) => s.state)).toEqual(["DEAD", "DEAD"]);
  });
});
