import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createStatusCommand } from "../../src/cli/commands/status.js";
import { emptyCallCounts, emptyEgressCounts, type FleetStatus, type ServerStatus } from "../../src/gateway/fleet-status.js";
import { hangar } from "../cli/capture-io.js";
import { project, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
  p.writeConfig({ servers: ["policies/fx.yaml"] });
});
afterEach(() => p[Symbol.dispose]());

const WRITTEN = Date.parse("2026-03-01T10:00:00.000Z");
const TWO_HOURS = 2 * 3600_000;

function server(name: string, uptimeMs?: number): ServerStatus {
  return {
    name,
    state: uptimeMs !== undefined ? "READY" : "COLD",
    since: new Date(WRITTEN - (uptimeMs ?? 0)).toISOString(),
    ...(uptimeMs !== undefined ? { uptimeMs } : {}),
    mode: "enforcing",
    approval: "approved",
    calls: emptyCallCounts(),
    callsInFlight: 0,
    egress: emptyEgressCounts(),
    restarts: 0,
    breaker: "closed",
    tools: 1,
    withheld: [],
  };
}

/** The status file as the gateway last wrote it, at WRITTEN: fx READY for a minute by then. */
function writeStatus(extra: Partial<FleetStatus> = {}): void {
  const status: FleetStatus = {
    version: 1,
    // This process: a gateway that is still running.
    pid: process.pid,
    startedAt: new Date(WRITTEN - 120_000).toISOString(),
    updatedAt: new Date(WRITTEN).toISOString(),
    endpoint: { kind: "stdio" },
    launcher: { kind: "docker", sandboxed: true },
    audit: join(p.dir, ".hangar/audit.db"),
    servers: [server("fx", 60_000), server("idle")],
    ...extra,
  };
  mkdirSync(join(p.dir, ".hangar"), { recursive: true });
  writeFileSync(join(p.dir, ".hangar/status.json"), JSON.stringify(status));
}

const statusAt = (nowMs: number, args: string[] = []) => hangar(["status", "--config", p.config, ...args], { commands: [createStatusCommand({ now: () => nowMs })] });
const uptimeColumn = (stdout: string, name: string): string | undefined => stdout.split("\n").find((l) => l.startsWith(`${name} `))?.split(/\s+/)[2];

describe("hangar status", () => {
  it("shows a running gateway's uptime as of now, not as of the last status write", async () => {
    writeStatus();
    const later = await statusAt(WRITTEN + TWO_HOURS);
    expect(later.code).toBe(0);
    expect(uptimeColumn(later.stdout, "fx")).toBe("2h01m");
    expect(uptimeColumn(later.stdout, "idle")).toBe("-");
    expect(uptimeColumn((await statusAt(WRITTEN + 5_000)).stdout, "fx")).toBe("1m05s");

    const json = JSON.parse((await statusAt(WRITTEN + TWO_HOURS, ["--json"])).stdout) as { running: boolean; status: FleetStatus };
    expect(json.running).toBe(true);
    expect(json.status.servers.map((s) => s.uptimeMs)).toEqual([60_000 + TWO_HOURS, undefined]);
  });

  it("keeps the last written uptime of a gateway that has stopped", async () => {
    writeStatus({ stoppedAt: new Date(WRITTEN).toISOString() });
    const run = await statusAt(WRITTEN + TWO_HOURS);
    expect(run.stdout).toMatch(/is not running \(stopped /);
    expect(uptimeColumn(run.stdout, "fx")).toBe("1m00s");
  });
});
