import { describe, expect, it } from "vitest";
import { InFlightCalls } from "../../src/core/audit/attribution.js";

describe("InFlightCalls at gateway rates", () => {
  // Regression: end() used to scan every retained call, so at 1000 calls/s with the default
  // 30 s retention each call cost ~30k iterations and the gateway's overhead grew with load.
  it("keeps end() cheap however many ended calls are retained", () => {
    const calls = new InFlightCalls({ lingerMs: 1000, retainMs: 30_000 });
    const started = performance.now();
    for (let i = 0; i < 200_000; i++) {
      calls.begin({ callId: `c${i}`, server: "s", tool: "t", identity: "a", startedAt: i });
      calls.end(`c${i}`, i + 1);
    }
    // The old scan took over a minute here; linear work takes well under a second, even on a loaded machine.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(calls.size).toBeLessThanOrEqual(30_002);
    expect(calls.attribute("s", 199_999).map((c) => c.callId)).toEqual(expect.arrayContaining(["c199999", "c199000"]));
  });
});
