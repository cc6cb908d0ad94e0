import { describe, expect, it } from "vitest";
import { driftReportJson, driftReportJunit, formatDriftReport } from "../../src/baseline/index.js";
import { buildDriftReport, freezeBaseline, recordBaseline, type Baseline, type DriftReport, type Observation } from "../../src/core/baseline/index.js";
import { connection, mailRun, T0 } from "./support/observations.js";
import { parseXml, walk } from "./support/xml.js";

const learn = (observations: Observation[]): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, observations);
const frozen = freezeBaseline(learn(mailRun()), new Date("2025-03-02T09:00:00.000Z"));
const report = (observations: Observation[]): DriftReport => buildDriftReport(frozen, learn(observations), { baselineFile: "baselines/postmark.json", run: "replay of send.yaml" });

describe("drift report as text", () => {
  it("says OK and lists what held", () => {
    expect(formatDriftReport(report(mailRun()))).toBe(
      [
        "OK: replay of send.yaml of postmark behaves as its baseline baselines/postmark.json (frozen at 2025-03-02T09:00:00.000Z, rate tolerance 2x)",
        "",
        "Expected behaviour: 4 held, 0 failed, 0 not exercised by this run",
        "  ok  connects to api.mail.test:443",
        "  ok  looks up api.mail.test (A)",
        "  ok  tool list_templates makes no connections",
        "  ok  tool send_email reaches only api.mail.test:443",
        "",
      ].join("\n"),
    );
  });

  it("names each drift with its severity, code and the tool that caused it", () => {
    const text = formatDriftReport(report(mailRun({ copies: ["collector.evil.test"], connectionsPerCall: 10 })));
    expect(text).toBe(
      [
        "DRIFT: replay of send.yaml of postmark differs from its baseline baselines/postmark.json (frozen at 2025-03-02T09:00:00.000Z, rate tolerance 2x): 2 drifts (1 high, 1 medium, 0 low)",
        "",
        "  HIGH    new-destination  send_email connected to collector.evil.test:443, which the baseline never saw",
        "  MEDIUM  rate-exceeded    send_email opened 30 connections a minute to api.mail.test:443, above 2x the baseline's highest of 3",
        "",
        "Expected behaviour: 3 held, 1 failed, 0 not exercised by this run",
        "  FAIL  connects to api.mail.test:443 (rate-exceeded)",
        "  ok    looks up api.mail.test (A)",
        "  ok    tool list_templates makes no connections",
        "  ok    tool send_email reaches only api.mail.test:443",
        "",
      ].join("\n"),
    );
  });

  it("escapes control characters that came from the sandbox", () => {
    const r = report(mailRun());
    const hostile: DriftReport = { ...r, ok: false, drifts: [{ code: "new-tool", severity: "low", kind: "tool", subject: "x", tools: ["x"], explanation: "evil\u001b[2J tool" }] };
    expect(formatDriftReport(hostile)).toContain("evil\\u001b[2J tool");
  });

  it("has a JSON form that parses back to the report", () => {
    const r = report(mailRun({ copies: ["collector.evil.test"] }));
    expect(JSON.parse(driftReportJson(r))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});

describe("drift report as JUnit XML", () => {
  it("is well-formed, with one testcase per expected behaviour and per unattached drift", () => {
    const xml = driftReportJunit(report(mailRun({ copies: ["collector.evil.test"], connectionsPerCall: 10, calls: 3 }).filter((o) => o.kind !== "tool-call" || o.tool !== "list_templates")));
    const root = parseXml(xml);
    expect(root.name).toBe("testsuites");
    expect(root.attrs).toEqual({ name: "hangar drift", tests: "5", failures: "2", errors: "0", skipped: "1" });
    const suite = root.children[0]!;
    expect(suite.attrs["name"]).toBe("hangar.postmark");
    const cases = [...walk(root)].filter((e) => e.name === "testcase");
    expect(cases.map((c) => [c.attrs["classname"], c.attrs["name"], c.children.map((x) => x.name).join()])).toEqual([
      ["hangar.postmark.destination", "connects to api.mail.test:443", "failure"],
      ["hangar.postmark.dns", "looks up api.mail.test (A)", ""],
      ["hangar.postmark.tool", "tool list_templates makes no connections", "skipped"],
      ["hangar.postmark.tool", "tool send_email reaches only api.mail.test:443", ""],
      ["hangar.postmark.drift", "new-destination: collector.evil.test:443", "failure"],
    ]);
    const failure = cases[4]!.children[0]!;
    expect(failure.attrs).toEqual({ type: "new-destination", message: "send_email connected to collector.evil.test:443, which the baseline never saw" });
    expect(failure.text).toBe("new-destination (high) on collector.evil.test:443; tools: send_email\nsend_email connected to collector.evil.test:443, which the baseline never saw");
    const properties = [...walk(suite)].filter((e) => e.name === "property").map((p) => [p.attrs["name"], p.attrs["value"]]);
    expect(properties).toEqual([
      ["server", "postmark"],
      ["baseline", "baselines/postmark.json"],
      ["frozenAt", "2025-03-02T09:00:00.000Z"],
      ["rateTolerance", "2"],
      ["run", "replay of send.yaml"],
    ]);
  });

  it("stays well-formed whatever the names hold: markup, quotes, control characters, lone surrogates", () => {
    const nasty = `a<b>&"'\u0001\u001b\ud800]]>\n\t`;
    const r = report(mailRun());
    const hostile: DriftReport = {
      ...r,
      server: nasty,
      run: nasty,
      drifts: [{ code: "new-tool", severity: "low", kind: "tool", subject: nasty, tools: [nasty], explanation: nasty }],
    };
    const root = parseXml(driftReportJunit(hostile));
    const failure = [...walk(root)].find((e) => e.name === "failure")!;
    expect(failure.attrs["message"]).toBe(`a<b>&"'\\u0001\\u001b\\ud800]]>\n\t`);
    expect(root.children[0]?.attrs["name"]).toBe(`hangar.a<b>&"'\\u0001\\u001b\\ud800]]>\n\t`);
  });

  it("the test parser itself rejects broken XML", () => {
    expect(() => parseXml("<a><b></a></b>")).toThrow(/does not match/);
    expect(() => parseXml('<a x="1" x="2"/>')).toThrow(/duplicate attribute/);
    expect(() => parseXml("<a>&nope;</a>")).toThrow(/unknown reference/);
    expect(() => parseXml("<a>\u0001</a>")).toThrow(/not allowed/);
    expect(() => parseXml("<a/><b/>")).toThrow(/second root/);
    expect(() => parseXml("<a x=1/>")).toThrow(/quoted/);
    expect(() => parseXml("<a>")).toThrow(/unclosed/);
  });

  it("a run with only unexercised behaviour and no drift has no failures", () => {
    const xml = driftReportJunit(buildDriftReport(frozen, learn(connection("api.mail.test", 443, T0, ["send_email"]))));
    const root = parseXml(xml);
    expect(root.attrs["failures"]).toBe("0");
  });
});
