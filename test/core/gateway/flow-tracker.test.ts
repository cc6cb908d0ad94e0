import { describe, expect, it } from "vitest";
import { describeChain, FlowTracker, labelsOf, type FlowCall, type FlowRule } from "../../../src/core/gateway/flow-tracker.js";
import type { ToolLabel } from "../../../src/core/policy/policy-schema.js";

const TOXIC: FlowRule = { name: "toxic-flow", deny: { after: ["reads-private"], call: ["writes-public"] } };
const TRIFECTA: FlowRule = { name: "lethal-trifecta", deny: { after: ["reads-private", "reads-untrusted"], call: ["sends-external", "writes-public"] } };
const NO_EXEC: FlowRule = { name: "no-exec-after-write", deny: { after: ["writes-public"], call: ["executes"] }, mode: "observing" };

let ids = 0;
const call = (server: string, tool: string, labels: ToolLabel[], at: number): FlowCall => ({ callId: `c${++ids}`, server, tool, labels, at });

describe("FlowTracker", () => {
  it("refuses the call that completes a flow, naming the earlier call; each call alone passes", () => {
    const t = new FlowTracker([TOXIC]);
    expect(t.check("s1", ["writes-public"], "enforcing", 0)).toEqual([]);
    const read = call("github", "read_private_issue", ["reads-private"], 10);
    expect(t.check("s1", read.labels, "enforcing", 10)).toEqual([]);
    t.record("s1", read);
    expect(t.check("s1", ["writes-public"], "enforcing", 20)).toEqual([{ flow: "toxic-flow", mode: "enforcing", labels: ["writes-public"], chain: [read] }]);
  });

  it("order matters: posting first, then reading, completes nothing", () => {
    const t = new FlowTracker([TOXIC]);
    t.record("s1", call("github", "create_public_comment", ["writes-public"], 1));
    expect(t.check("s1", ["reads-private"], "enforcing", 2)).toEqual([]);
  });

  it("the session is the unit: a read in one session does not taint another", () => {
    const t = new FlowTracker([TOXIC]);
    t.record("s1", call("github", "read_private_issue", ["reads-private"], 1));
    expect(t.check("s2", ["writes-public"], "enforcing", 2)).toEqual([]);
    expect(t.check("s1", ["writes-public"], "enforcing", 2)).toHaveLength(1);
  });

  it("`after` needs every label, over any servers and in any order; `call` needs any label", () => {
    const t = new FlowTracker([TRIFECTA]);
    const untrusted = call("web", "fetch_page", ["reads-untrusted"], 1);
    t.record("s", untrusted);
    expect(t.check("s", ["sends-external"], "enforcing", 2)).toEqual([]);
    const priv = call("files", "read_file", ["reads-private"], 3);
    t.record("s", priv);
    const [v] = t.check("s", ["sends-external", "executes"], "enforcing", 4);
    expect(v).toEqual({ flow: "lethal-trifecta", mode: "enforcing", labels: ["sends-external"], chain: [untrusted, priv] });
    expect(t.check("s", ["writes-public"], "enforcing", 4)).toHaveLength(1);
    expect(t.check("s", ["reads-private"], "enforcing", 4)).toEqual([]);
  });

  it("one call carrying several labels satisfies them all, and is cited once", () => {
    const t = new FlowTracker([TRIFECTA]);
    const both = call("github", "read_issue", ["reads-private", "reads-untrusted"], 1);
    t.record("s", both);
    expect(t.check("s", ["writes-public"], "enforcing", 2)[0]?.chain).toEqual([both]);
  });

  it("the chain cites the first call that carried each label", () => {
    const t = new FlowTracker([TOXIC]);
    const first = call("a", "read", ["reads-private"], 1);
    t.record("s", first);
    t.record("s", call("a", "read", ["reads-private"], 2));
    expect(t.check("s", ["writes-public"], "enforcing", 3)[0]?.chain).toEqual([first]);
  });

  it("a flow's own mode overrides the server's; several flows are reported together", () => {
    const t = new FlowTracker([TOXIC, NO_EXEC, { name: "no-exec-after-private", deny: { after: ["reads-private"], call: ["executes"] } }]);
    t.record("s", call("a", "read", ["reads-private"], 1));
    t.record("s", call("a", "post", ["writes-public"], 2));
    expect(t.check("s", ["executes"], "enforcing", 3).map((v) => [v.flow, v.mode])).toEqual([
      ["no-exec-after-write", "observing"],
      ["no-exec-after-private", "enforcing"],
    ]);
    expect(t.check("s", ["writes-public"], "observing", 3).map((v) => [v.flow, v.mode])).toEqual([["toxic-flow", "observing"]]);
  });

  it("a session that ends is forgotten at once", () => {
    const t = new FlowTracker([TOXIC]);
    t.record("s", call("a", "read", ["reads-private"], 1));
    t.endSession("s");
    expect(t.sessionCount).toBe(0);
    expect(t.check("s", ["writes-public"], "enforcing", 2)).toEqual([]);
  });

  it("an idle session expires; calls without labels keep nothing", () => {
    const t = new FlowTracker([TOXIC], { idleTtlMs: 1000 });
    t.record("quiet", call("a", "echo", [], 0));
    expect(t.sessionCount).toBe(0);
    t.record("s", call("a", "read", ["reads-private"], 0));
    t.record("s", call("a", "echo", [], 900)); // keeps it alive
    expect(t.check("s", ["writes-public"], "enforcing", 1800)).toHaveLength(1);
    expect(t.check("s", ["writes-public"], "enforcing", 1901)).toEqual([]);
    expect(t.sessionCount).toBe(0);
  });

  it("idle sessions are swept as others record, so abandoned sessions do not pile up", () => {
    const t = new FlowTracker([TOXIC], { idleTtlMs: 1000 });
    for (let i = 0; i < 50; i++) t.record(`old-${i}`, call("a", "read", ["reads-private"], i));
    t.record("new", call("a", "read", ["reads-private"], 5000));
    expect(t.sessionCount).toBe(1);
  });

  it("is bounded: past maxSessions the least recently active session is dropped", () => {
    const t = new FlowTracker([TOXIC], { maxSessions: 3 });
    for (const s of ["a", "b", "c"]) t.record(s, call("x", "read", ["reads-private"], 1));
    t.record("a", call("x", "read", ["reads-private"], 2)); // a is now the most recent
    t.record("d", call("x", "read", ["reads-private"], 3));
    expect(t.sessionCount).toBe(3);
    expect(t.check("b", ["writes-public"], "enforcing", 4)).toEqual([]);
    for (const s of ["a", "c", "d"]) expect(t.check(s, ["writes-public"], "enforcing", 4), s).toHaveLength(1);
  });

  it("memory per session stays constant however many calls it makes", () => {
    const t = new FlowTracker([TOXIC]);
    for (let i = 0; i < 10_000; i++) t.record("s", call("a", "read", ["reads-private", "reads-untrusted"], i));
    expect(t.check("s", ["writes-public"], "enforcing", 10_001)[0]?.chain).toHaveLength(1);
    expect(t.sessionCount).toBe(1);
  });

  it("without rules it is inactive and a call without labels is never refused", () => {
    expect(new FlowTracker([]).active).toBe(false);
    const t = new FlowTracker([TOXIC]);
    t.record("s", call("a", "read", ["reads-private"], 1));
    expect(t.check("s", [], "enforcing", 2)).toEqual([]);
  });
});

describe("labelsOf", () => {
  it("unions the labels of every glob the tool name matches, in declaration order", () => {
    const labels = { "read_*": ["reads-private"], "*_issue": ["reads-untrusted", "reads-private"], post: ["writes-public"] } as const;
    expect(labelsOf(labels, "read_issue")).toEqual(["reads-private", "reads-untrusted"]);
    expect(labelsOf(labels, "post")).toEqual(["writes-public"]);
    expect(labelsOf(labels, "poster")).toEqual([]);
    expect(labelsOf(undefined, "read_issue")).toEqual([]);
  });
});

describe("describeChain", () => {
  it("names each call by its exposed name with its labels", () => {
    const chain = [call("github", "read_private_issue", ["reads-private"], 1), call("web", "fetch", ["reads-untrusted"], 2)];
    expect(describeChain(chain, (s, t) => `${s}__${t}`)).toBe("github__read_private_issue (reads-private), then web__fetch (reads-untrusted)");
  });
});
