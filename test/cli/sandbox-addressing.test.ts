import { describe, expect, it } from "vitest";
import { createEventsCommand } from "../../src/cli/commands/events.js";
import { createPsCommand } from "../../src/cli/commands/ps.js";
import { createStopCommand } from "../../src/cli/commands/stop.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

/**
 * Two clients of one policy run two sandboxes of one server, told apart by their run ids:
 * ps, stop and events take either a server name or a run id, and stop never takes another
 * client's sandbox down by accident.
 */

const twoRuns = (): ReturnType<typeof listingEngine> =>
  listingEngine([sandbox("everything", "a1b2c3d4", "2026-01-01T00:00:00.000Z"), sandbox("everything", "e5f6a7b8", "2026-01-01T00:01:00.000Z"), sandbox("memory", "0c0c0c0c")]);

describe("a server with two sandboxes", () => {
  it("stop <server> refuses, lists the runs, and stops nothing", async () => {
    const fake = twoRuns();
    const run = await hangar(["stop", "everything"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "hangar: everything has 2 sandboxes; stop one by its run (hangar stop <run>), or all of them with --all:\n" +
        "  run a1b2c3d4: everything, started 2026-01-01T00:00:00.000Z, owner elsewhere:1 (unknown)\n" +
        "  run e5f6a7b8: everything, started 2026-01-01T00:01:00.000Z, owner elsewhere:1 (unknown)\n",
    );
    expect(fake.calls).toEqual([]);
  });

  it("stop <run> stops that one only", async () => {
    const fake = twoRuns();
    const run = await hangar(["stop", "e5f6a7b8"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 0, stdout: "stopped everything (run e5f6a7b8)\n", stderr: "" });
    expect(fake.calls.every((c) => c.endsWith("everything-e5f6a7b8"))).toBe(true);
    expect(fake.calls).toHaveLength(5);
  });

  it("stop <server> --all stops both, and leaves the other server alone", async () => {
    const fake = twoRuns();
    const run = await hangar(["stop", "everything", "--all"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 0, stdout: "stopped everything (run a1b2c3d4)\nstopped everything (run e5f6a7b8)\n", stderr: "" });
    expect(fake.calls.some((c) => c.includes("memory"))).toBe(false);
    expect(fake.calls).toHaveLength(10);
  });

  it("ps lists both runs; ps <server> and ps <run> narrow the list", async () => {
    const fake = twoRuns();
    const ps = createPsCommand({ openContext: fake.open });
    const runsOf = async (argv: string[]): Promise<string[]> =>
      (JSON.parse((await hangar(["ps", ...argv, "--json"], { commands: [ps] })).stdout) as { sandboxes: { run: string }[] }).sandboxes.map((s) => s.run);
    expect(await runsOf([])).toEqual(["a1b2c3d4", "e5f6a7b8", "0c0c0c0c"]);
    expect(await runsOf(["everything"])).toEqual(["a1b2c3d4", "e5f6a7b8"]);
    expect(await runsOf(["e5f6a7b8"])).toEqual(["e5f6a7b8"]);
  });

  it("events <server> asks for a run", async () => {
    const fake = twoRuns();
    const run = await hangar(["events", "everything"], { commands: [createEventsCommand({ openContext: fake.open })] });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("everything has 2 sandboxes (runs a1b2c3d4, e5f6a7b8); name one by its run: hangar events <run>");
  });
});
