import { describe, expect, it } from "vitest";
import { createEventsCommand } from "../../src/cli/commands/events.js";
import { createStopCommand } from "../../src/cli/commands/stop.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

describe("hangar stop", () => {
  it("a name with no sandbox exits 1, stops nothing, and suggests the closest running one", async () => {
    const fake = listingEngine([sandbox("memory", "r1"), sandbox("everything", "r2")]);
    const run = await hangar(["stop", "memroy"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 1, stdout: "", stderr: 'hangar: no sandbox of memroy (see hangar ps); did you mean "memory"?\n' });
    expect(fake.calls).toEqual([]);
  });

  it("says only that nothing matched when no name is close", async () => {
    const fake = listingEngine([sandbox("everything", "r2")]);
    const run = await hangar(["stop", "memory"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 1, stdout: "", stderr: "hangar: no sandbox of memory (see hangar ps)\n" });
  });

  it("a wrong run of a running server names the server's runs", async () => {
    const fake = listingEngine([sandbox("memory", "a1b2c3"), sandbox("memory", "d4e5f6")]);
    const stop = createStopCommand({ openContext: fake.open });
    expect(await hangar(["stop", "memory", "--run", "a1b2c4"], { commands: [stop] })).toMatchObject({
      code: 1,
      stderr: 'hangar: no sandbox of memory with run a1b2c4 (see hangar ps); did you mean run "a1b2c3"?\n',
    });
    expect(await hangar(["stop", "memory", "--run", "zzz"], { commands: [stop] })).toMatchObject({
      code: 1,
      stderr: "hangar: no sandbox of memory with run zzz (see hangar ps); its runs: a1b2c3, d4e5f6\n",
    });
    expect(fake.calls).toEqual([]);
  });

  it("stops the sandbox of an exact name: server, sidecar, then the network", async () => {
    const fake = listingEngine([sandbox("memory", "r1")]);
    const run = await hangar(["stop", "memory"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 0, stdout: "stopped memory (run r1)\n", stderr: "" });
    expect(fake.calls).toEqual(["stop server-memory-r1", "stop sidecar-memory-r1", "remove server-memory-r1", "remove sidecar-memory-r1", "remove network net-memory-r1"]);
  });
});

describe("hangar events", () => {
  it("a name with no sandbox exits 1 and suggests the closest running one", async () => {
    const fake = listingEngine([sandbox("memory", "r1")]);
    const run = await hangar(["events", "memroy"], { commands: [createEventsCommand({ openContext: fake.open })] });
    expect(run).toEqual({ code: 1, stdout: "", stderr: 'hangar: no sandbox of memroy (see hangar ps); did you mean "memory"?\n' });
  });
});
