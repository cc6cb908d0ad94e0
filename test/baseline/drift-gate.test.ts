import { describe, expect, it } from "vitest";
import { driftReportJunit, failsGate, formatDriftReport, gateFailures } from "../../src/baseline/index.js";
import { buildDriftReport, freezeBaseline, recordBaseline, type Baseline, type Observation } from "../../src/core/baseline/index.js";
import { call, mailRun } from "./support/observations.js";
import { parseXml, walk } from "./support/xml.js";

/** The --fail-on gate: which drifts fail a run, and how text and JUnit show the ones below it. */
const learn = (observations: Observation[]): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, observations);
const frozen = freezeBaseline(learn(mailRun()), new Date("2025-03-02T09:00:00.000Z"));
// A rate drift on api.mail.test (medium) and a new tool (low): both concern nothing high.
const report = buildDriftReport(frozen, learn([...mailRun({ connectionsPerCall: 10 }), call("stats", Date.parse("2025-03-01T10:00:45.000Z"))]), { baselineFile: "b.json" });

describe("the --fail-on gate", () => {
  it("fails on drifts at or above the severity", () => {
    expect(report.drifts.map((d) => [d.code, d.severity])).toEqual([
      ["rate-exceeded", "medium"],
      ["new-tool", "low"],
    ]);
    expect(gateFailures(report, "low").map((d) => d.code)).toEqual(["rate-exceeded", "new-tool"]);
    expect(gateFailures(report, "medium").map((d) => d.code)).toEqual(["rate-exceeded"]);
    expect(gateFailures(report, "high")).toEqual([]);
    expect([failsGate("high", "high"), failsGate("medium", "high"), failsGate("low", "medium"), failsGate("medium", "medium")]).toEqual([true, false, false, true]);
  });

  it("the text report says what the gate decided, unless it is the default", () => {
    expect(formatDriftReport(report)).not.toContain("Gate");
    expect(formatDriftReport(report, { failOn: "low" })).toBe(formatDriftReport(report));
    expect(formatDriftReport(report, { failOn: "medium" })).toContain("\nGate --fail-on medium: FAILS: 1 drift is medium or high\n");
    expect(formatDriftReport(report, { failOn: "high" })).toContain("\nGate --fail-on high: passes: no drift is high\n");
  });

  it("JUnit: a drift below the gate passes its testcase and says what drifted; one at or above it fails", () => {
    expect(driftReportJunit(report, { failOn: "low" })).toBe(driftReportJunit(report));
    const root = parseXml(driftReportJunit(report, { failOn: "medium" }));
    const cases = [...walk(root)].filter((e) => e.name === "testcase");
    const byName = (name: string): (typeof cases)[number] | undefined => cases.find((c) => c.attrs["name"] === name);
    expect(byName("connects to api.mail.test:443")?.children.map((c) => c.name)).toEqual(["failure"]);
    const stats = byName("new-tool: stats");
    expect(stats?.children.map((c) => c.name)).toEqual(["system-out"]);
    expect(stats?.children[0]?.text).toBe("below --fail-on medium, so not failing:\nnew-tool (low) on stats; tools: stats\nstats was called 1 time, a tool the baseline never saw");
    expect(root.attrs["failures"]).toBe("1");
    expect([...walk(root)].filter((e) => e.name === "property").map((p) => [p.attrs["name"], p.attrs["value"]])).toContainEqual(["failOn", "medium"]);
  });
});
