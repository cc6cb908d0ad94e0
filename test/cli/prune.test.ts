import { describe, expect, it } from "vitest";
import { createPruneCommand } from "../../src/cli/commands/prune.js";
import { hangarLabels } from "../../src/docker/labels.js";
import type { OwnerState } from "../../src/cli/commands/sandbox-inventory.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

const SELF = "here:100";
/** here:200 still runs, here:300 has ended, there:1 is on another host. */
const states: Record<string, OwnerState> = { [SELF]: "alive", "here:200": "alive", "here:300": "dead", "there:1": "unknown" };
const ownerState = (owner: string): OwnerState => states[owner] ?? "unknown";

function engine() {
  const shared = { id: "net-egress", name: "hangar-egress", internal: false, ipv6: false, labels: hangarLabels({ server: "shared", role: "network", run: "shared" }), driverOptions: {}, subnets: [], containers: ["sidecar-live-r1"] };
  return listingEngine([sandbox("live", "r1", undefined, "here:200"), sandbox("dead", "r2", undefined, "here:300"), sandbox("remote", "r3", undefined, "there:1"), sandbox("mine", "r4", undefined, SELF)], {
    networks: [shared],
    volumes: [
      { name: "vol-dead", labels: hangarLabels({ server: "dead", role: "server", run: "r2" }) },
      { name: "vol-live", labels: hangarLabels({ server: "live", role: "server", run: "r1" }) },
    ],
    containers: [{ id: "demo-1", name: "hangar-demo-upstream", image: "img", labels: hangarLabels({ server: "demo", role: "demo", run: "demo" }), status: "running", running: true, addresses: {}, createdAt: "2026-01-01T00:00:00.000Z" }],
  });
}

const prune = (argv: string[], e: ReturnType<typeof engine>) => hangar(["prune", ...argv], { commands: [createPruneCommand({ openContext: e.open, ownerState, self: SELF })] });

describe("hangar prune", () => {
  it("by default removes only sandboxes whose owner has ended or is this process, never a live one of another process or host", async () => {
    const e = engine();
    const run = await prune([], e);
    expect(run.code, run.stderr).toBe(0);
    expect(e.calls).toEqual([
      "remove sidecar-dead-r2",
      "remove server-dead-r2",
      "remove sidecar-mine-r4",
      "remove server-mine-r4",
      "remove network net-dead-r2",
      "remove network net-mine-r4",
      "remove volume vol-dead",
    ]);
    expect(run.stdout).toContain("kept container hangar-live-r1-sidecar (owner here:200 is running)");
    expect(run.stdout).toContain("kept container hangar-remote-r3-server (owner there:1 is on another host)");
    expect(run.stdout).toContain("kept container hangar-demo-upstream (a demo upstream; --all removes it)");
    expect(run.stdout).toContain("kept network hangar-egress (still used by a container that stays)");
    expect(run.stdout).toContain("kept volume vol-live (its sandbox stays)");
    expect(run.stdout).toMatch(/pruned 4 containers, 2 networks, 1 volume; kept \d+ objects of other processes, hosts, users or state directories \(--all removes them too\)/);
    // The sandbox of this very process went too: it is told so.
    expect(run.stderr).toBe(`hangar: note: process ${SELF} was still using some of what was removed; it will see it gone\n`);
  });

  it("--dry-run lists the same and removes nothing", async () => {
    const e = engine();
    const run = await prune(["--dry-run", "--json"], e);
    expect(run.code, run.stderr).toBe(0);
    expect(e.calls).toEqual([]);
    const report = JSON.parse(run.stdout) as { dryRun: boolean; removed: { containers: string[]; networks: string[]; volumes: string[] } };
    expect(report.dryRun).toBe(true);
    expect(report.removed).toMatchObject({
      containers: ["hangar-dead-r2-sidecar", "hangar-dead-r2-server", "hangar-mine-r4-sidecar", "hangar-mine-r4-server"],
      networks: ["hangar-dead-r2", "hangar-mine-r4"],
      volumes: ["vol-dead"],
    });
    const text = await prune(["--dry-run"], e);
    expect(text.stdout).toContain("would remove container hangar-dead-r2-sidecar");
    expect(text.stdout).toMatch(/would prune 4 containers/);
    expect(e.calls).toEqual([]);
  });

  it("--all removes every Hangar object, live ones included, and names their live owners", async () => {
    const e = engine();
    const run = await prune(["--all"], e);
    expect(run.code, run.stderr).toBe(0);
    expect(e.calls.filter((c) => c.startsWith("remove ") && !c.startsWith("remove network") && !c.startsWith("remove volume"))).toHaveLength(9);
    expect(e.calls).toEqual(expect.arrayContaining(["remove sidecar-live-r1", "remove server-remote-r3", "remove demo-1", "remove network net-egress", "remove volume vol-live"]));
    expect(run.stderr).toContain("process here:200 was still using");
  });

  it("--server narrows the default scope further", async () => {
    const e = engine();
    await prune(["--server", "live"], e);
    expect(e.calls).toEqual([]);
    await prune(["--server", "dead"], e);
    expect(e.calls).toEqual(["remove sidecar-dead-r2", "remove server-dead-r2", "remove network net-dead-r2", "remove volume vol-dead"]);
  });
});

