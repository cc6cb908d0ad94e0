import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { queryAuditLog } from "../../src/audit/index.js";
import type { LifecycleData } from "../../src/core/audit/audit-record.js";
import { approve, connectClient, eventually, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

async function oneServer(gateway: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<void> {
  const file = await p.policy("fx", { env });
  p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: { ...FAST_GATEWAY, ...gateway } });
  await approve(p.config, [file]);
}

function lifecycleActions(path: string): string[] {
  return queryAuditLog(path, { kinds: ["lifecycle"], server: "fx" }).records.map((r) => (r.data as unknown as LifecycleData).action);
}

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an MCP error, got ${String(err)}`);
  return err;
}

describe("lifecycle", () => {
  it("starts lazily on the first call: COLD → STARTING → READY", async () => {
    await oneServer();
    await using opened = await openTestGateway(p.config);
    const fx = opened.gateway.server("fx")!;
    expect(fx.supervisor.state).toBe("COLD");
    await using client = await connectClient(opened, "dev");
    expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "x" } }))).toBe("fx: x");
    expect(fx.supervisor.state).toBe("READY");
    opened.audit.flush();
    expect(lifecycleActions(opened.audit.path)).toEqual(["starting", "ready"]);
  });

  it("a server killed mid-session goes DEGRADED, restarts and returns to READY", async () => {
    await oneServer();
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const fx = opened.gateway.server("fx")!;
    const pid = Number(textOf(await client.callTool({ name: "fx__pid" })));
    const inFlight = client.callTool({ name: "fx__slow", arguments: { ms: 5000 } });
    await eventually(() => (fx.supervisor.snapshot().callsInFlight > 0 ? true : undefined));
    process.kill(pid, "SIGKILL");

    const err = await rpcError(inFlight);
    expect(err.code).toBe(-32015);
    expect(err.message).toMatch(/server "fx" went away during the request/);
    await eventually(() => (fx.supervisor.state === "READY" && fx.supervisor.snapshot().restarts === 1 ? true : undefined), 15_000, "READY after restart");
    const newPid = Number(textOf(await client.callTool({ name: "fx__pid" })));
    expect(newPid).not.toBe(pid);

    opened.audit.flush();
    expect(lifecycleActions(opened.audit.path)).toEqual(["starting", "ready", "degraded", "restarting", "ready"]);
    const degraded = queryAuditLog(opened.audit.path, { kinds: ["lifecycle"] }).records.map((r) => r.data as unknown as LifecycleData).find((d) => d.action === "degraded");
    expect(degraded?.detail?.["reason"]).toMatch(/^exited/);
    const slow = queryAuditLog(opened.audit.path, { kinds: ["tool-call"], tool: "slow" }).records[0]?.data as { outcome: string; error: string };
    expect(slow).toMatchObject({ outcome: "error" });
  });

  it("repeated failures open the breaker; calls then fail fast with a clear error; a trial after the cool-down closes it", async () => {
    await oneServer({ breaker: { failureThreshold: 3, coolDownMs: 1500 } });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const fx = opened.gateway.server("fx")!;
    for (let i = 0; i < 3; i++) {
      await eventually(() => (fx.supervisor.state !== "STARTING" && fx.supervisor.state !== "DEGRADED" ? true : undefined), 15_000, "server back");
      const err = await rpcError(client.callTool({ name: "fx__crash" }));
      expect(err.code).toBe(-32015);
    }
    expect(fx.supervisor.snapshot().breaker).toBe("open");

    const started = Date.now();
    const fast = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(Date.now() - started).toBeLessThan(200);
    expect(fast.code).toBe(-32014);
    expect(fast.message).toMatch(/server "fx" is unavailable: its circuit breaker is open after 3 consecutive failures \(last: went away during a request: .*\); calls fail fast for another \d+ s/);
    expect(fast.data).toMatchObject({ code: "HANGAR_GATEWAY_UNAVAILABLE", reason: "breaker-open" });

    await eventually(() => (fx.supervisor.snapshot().breaker === "half-open" ? true : undefined), 5000, "half-open");
    await eventually(() => (fx.supervisor.state === "READY" ? true : undefined), 15_000, "restarted");
    expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "back" } }))).toBe("fx: back");
    expect(fx.supervisor.snapshot().breaker).toBe("closed");

    opened.audit.flush();
    const actions = lifecycleActions(opened.audit.path);
    expect(actions).toContain("breaker-open");
    expect(actions).toContain("breaker-closed");
    const outcomes = queryAuditLog(opened.audit.path, { kinds: ["tool-call"] }).records.map((r) => (r.data as { outcome: string }).outcome);
    expect(outcomes).toEqual(["error", "error", "error", "unavailable", "ok"]);
  });

  it("a server that cannot start is retried with backoff, then declared DEAD", async () => {
    await oneServer({ restart: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 3 }, breaker: { failureThreshold: 100, coolDownMs: 1000 } }, { FIXTURE_CRASH_ON_START: "3" });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const first = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(first.code).toBe(-32014);
    expect(first.message).toMatch(/server "fx" could not start/);
    const fx = opened.gateway.server("fx")!;
    await eventually(() => (fx.supervisor.state === "DEAD" ? true : undefined), 20_000, "DEAD");
    const dead = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(dead.message).toMatch(/server "fx" is dead: it failed to restart 3 times in a row \(last error: start failed: .*crashing on start as asked/);
    opened.audit.flush();
    expect(lifecycleActions(opened.audit.path).at(-1)).toBe("dead");
  });

  it("gives up on a server that never answers initialize within startTimeoutMs, and stops its process", async () => {
    const pidFile = join(p.dir, "fx.pid");
    await oneServer({ startTimeoutMs: 600 }, { FIXTURE_SILENT: "1", FIXTURE_PID_FILE: pidFile });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const err = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(err.message).toMatch(/server "fx" could not start: .*(did not start within 600 ms|Request timed out)/);
    const pid = Number(readFileSync(pidFile, "utf8"));
    await eventually(() => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    }, 10_000, "the hung server to be stopped");
  });

  it("stops an idle server (READY → COLD) and starts it again on the next call", async () => {
    await oneServer({ idleTimeoutMs: 300 });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const fx = opened.gateway.server("fx")!;
    await client.callTool({ name: "fx__echo", arguments: { message: "x" } });
    await eventually(() => (fx.supervisor.state === "COLD" ? true : undefined), 5000, "idle stop");
    expect(textOf(await client.callTool({ name: "fx__echo", arguments: { message: "again" } }))).toBe("fx: again");
    opened.audit.flush();
    expect(lifecycleActions(opened.audit.path)).toEqual(["starting", "ready", "idle-stopped", "starting", "ready"]);
  });

  it("a server that stops answering pings is restarted", async () => {
    await oneServer({ healthIntervalMs: 100, pingTimeoutMs: 200 });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const fx = opened.gateway.server("fx")!;
    const pid = Number(textOf(await client.callTool({ name: "fx__pid" })));
    process.kill(pid, "SIGSTOP");
    try {
      await eventually(() => (fx.supervisor.snapshot().restarts === 1 && fx.supervisor.state === "READY" ? true : undefined), 15_000, "restart after failed health check");
    } finally {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    expect(fx.supervisor.snapshot().lastError?.message).toMatch(/health check failed/);
    expect(Number(textOf(await client.callTool({ name: "fx__pid" })))).not.toBe(pid);
  });
});
