import { describe, expect, it } from "vitest";
import { InFlightCalls } from "../../src/core/audit/attribution.js";

const call = (callId: string, server: string, startedAt: number, tool = "fetch") => ({ callId, server, tool, identity: "alice", startedAt });

describe("InFlightCalls", () => {
  it("attributes an event to the calls of its server in flight at the event's time", () => {
    const calls = new InFlightCalls({ lingerMs: 100 });
    calls.begin(call("a", "s1", 1000));
    calls.begin(call("b", "s2", 1000));
    expect(calls.attribute("s1", 1050)).toEqual([{ callId: "a", tool: "fetch", identity: "alice" }]);
    expect(calls.attribute("s1", 999)).toEqual([]); // before the call started
    expect(calls.attribute("s3", 1050)).toEqual([]);
  });

  it("keeps a call eligible for lingerMs after it ends (close events come after the result)", () => {
    const calls = new InFlightCalls({ lingerMs: 100 });
    calls.begin(call("a", "s1", 1000));
    calls.end("a", 2000);
    expect(calls.attribute("s1", 2100).map((c) => c.callId)).toEqual(["a"]);
    expect(calls.attribute("s1", 2101)).toEqual([]);
    // An event stamped during the call but delivered late is still attributed.
    expect(calls.attribute("s1", 1500).map((c) => c.callId)).toEqual(["a"]);
  });

  it("names every call in flight when several overlap, rather than guess", () => {
    const calls = new InFlightCalls();
    calls.begin({ ...call("a", "s1", 1000), session: "x" });
    calls.begin(call("b", "s1", 1010, "search"));
    expect(calls.attribute("s1", 1020)).toEqual([
      { callId: "a", tool: "fetch", identity: "alice", session: "x" },
      { callId: "b", tool: "search", identity: "alice" },
    ]);
  });

  it("forgets ended calls after retainMs, so memory stays bounded", () => {
    const calls = new InFlightCalls({ lingerMs: 10, retainMs: 1000 });
    for (let i = 0; i < 100; i++) {
      calls.begin(call(`c${i}`, "s1", i * 100));
      calls.end(`c${i}`, i * 100 + 50);
    }
    expect(calls.size).toBeLessThanOrEqual(12);
  });
});
