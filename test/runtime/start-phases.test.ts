import { describe, expect, it } from "vitest";
import { formatPhases, StartPhases } from "../../src/runtime/start-phases.js";

describe("StartPhases", () => {
  it("times each step by the injected clock, adds repeats, keeps first-seen order, and records failed steps too", async () => {
    let now = 0;
    const phases = new StartPhases(() => now);
    await phases.time("images", async () => void (now += 40.4));
    await expect(phases.time("sidecar", async () => {
      now += 300;
      throw new Error("not ready");
    })).rejects.toThrow("not ready");
    await phases.time("images", async () => void (now += 10));
    phases.record("cli", 120.6);
    expect(phases.toJSON()).toEqual({ images: 50, sidecar: 300, cli: 121 });
    expect(formatPhases(phases.toJSON())).toBe("images 50 ms, sidecar 300 ms, cli 121 ms");
  });
});
