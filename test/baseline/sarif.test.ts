import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { driftReportSarif } from "../../src/baseline/drift-sarif.js";
import { parseBaselineText } from "../../src/baseline/load-baseline.js";
import { artifactUri, fingerprint, ruleText, SARIF_SCHEMA } from "../../src/baseline/sarif.js";
import { asFrozen } from "../../src/core/baseline/baseline-schema.js";
import { buildDriftReport, DRIFT_SEVERITY, recordBaseline, type DriftCode, type DriftReport, type Observation } from "../../src/core/baseline/index.js";
import type { Policy } from "../../src/core/policy/policy-schema.js";
import { parsePolicyText } from "../../src/policy/index.js";
import { buildQuarantineReport } from "../../src/quarantine/quarantine-report.js";
import { quarantineReportSarif } from "../../src/quarantine/quarantine-sarif.js";
import type { ScenarioRun } from "../../src/replay/scenario-session.js";
import { call, connection, event, mailRun, obs, T0 } from "./support/observations.js";
import { sarifProblems } from "./support/sarif-schema.js";

/**
 * SARIF from the drift report and the quarantine report: valid against the SARIF 2.1.0
 * schema, one result per drift (or destination tried), rule ids = drift codes, levels from
 * severities, and each result at the line of the baseline entry it contradicts and of the
 * policy's allow entry that admits it.
 */
const BASELINE_FILE = "test/fixtures/baselines/postmark-v1-frozen.json";
const BASELINE_TEXT = readFileSync(BASELINE_FILE, "utf8");
const POLICY_FILE = "policies/postmark.yaml";
const POLICY_TEXT = [
  "version: 1", // 1
  "name: postmark", // 2
  "server:", // 3
  '  image: { ref: "mail:1" }', // 4
  "egress:", // 5
  "  allow:", // 6
  "    - host: api.mail.test", // 7
  "      ports: [443]", // 8
  '    - host: "*.evil.test"', // 9
  "      ports: [443]", // 10
  '    - host: "*.tun.test"', // 11
  "      ports: [53]", // 12
  "    - cidr: 10.0.0.0/8", // 13
  "      ports: [5432]", // 14
  "",
].join("\n");

function policy(): Policy {
  const parsed = parsePolicyText(POLICY_TEXT, POLICY_FILE);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.policy;
}

/** 1-based line of the nth occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string, nth = 1): number {
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at === -1) throw new Error(`${needle} not found`);
  }
  return text.slice(0, at).split("\n").length;
}

/** A run that shows every drift the engine knows, against the postmark fixture. */
function everyDrift(): DriftReport {
  const loaded = parseBaselineText(BASELINE_TEXT, BASELINE_FILE);
  if (!loaded.ok) throw new Error("fixture");
  const frozen = asFrozen(loaded.baseline)!;
  const at = T0 + 1000;
  const observations: Observation[] = [
    ...mailRun({ copies: ["collector.evil.test"], connectionsPerCall: 10, calls: 8 }),
    ...connection("api.mail.test", 8443, at, ["send_email"]),
    ...connection("10.1.2.3", 5432, at, ["send_email"]),
    obs(event({ at, type: "dns", protocol: "dns", path: "dns", name: "sneaky.example", recordType: "A", tools: ["send_email"] })),
    obs(event({ at, type: "dns", protocol: "dns", path: "dns", name: "api.mail.test", recordType: "TXT", tools: ["send_email"] })),
    call("stats", at + 5),
    ...[1, 2, 3, 4].map((i) => call("send_email", at + 10 * i)),
    ...connection("api.mail.test", 443, T0 + 40_050, ["list_templates"]),
    obs(event({ at, type: "dns", protocol: "dns", path: "dns", name: "q2x9v7k1z.tun.test", recordType: "A", rule: "*.tun.test", reasons: ["tunnel-entropy"], tools: ["send_email"] })),
  ];
  return buildDriftReport(frozen, recordBaseline({ server: "postmark", rateTolerance: 2 }, observations), { baselineFile: BASELINE_FILE, run: "replay of send.yaml" });
}

interface Result {
  ruleId: string;
  level: string;
  message: { text: string };
  locations?: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } }; message?: { text: string } }[];
  relatedLocations?: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } }; message?: { text: string } }[];
  partialFingerprints: Record<string, string>;
  properties: Record<string, unknown>;
}

function parse(text: string): { runs: [{ tool: { driver: { rules: { id: string; defaultConfiguration: { level: string }; properties: Record<string, unknown> }[] } }; results: Result[]; properties: Record<string, unknown> }] } {
  return JSON.parse(text) as ReturnType<typeof parse>;
}

describe("drift report as SARIF", () => {
  const report = everyDrift();
  const text = driftReportSarif(report, { baseline: { file: BASELINE_FILE, text: BASELINE_TEXT }, policy: { file: POLICY_FILE, text: POLICY_TEXT, policy: policy() }, toolVersion: "1.2.3", failOn: "high" });
  const sarif = parse(text);
  const [run] = sarif.runs;
  const result = (code: DriftCode, subject: string): Result => {
    const found = run.results.find((r) => r.ruleId === code && r.properties["subject"] === subject);
    if (found === undefined) throw new Error(`no ${code} result for ${subject}: ${run.results.map((r) => `${r.ruleId} ${String(r.properties["subject"])}`).join("; ")}`);
    return found;
  };
  const where = (r: Result): [string, number, number] | undefined => {
    const l = r.locations?.[0]?.physicalLocation;
    return l === undefined ? undefined : [l.artifactLocation.uri, l.region.startLine, l.region.startColumn];
  };
  const policyLine = (r: Result): [number, string] | undefined => {
    const l = r.relatedLocations?.[0];
    return l === undefined ? undefined : [l.physicalLocation.region.startLine, l.message?.text ?? ""];
  };

  it("validates against the SARIF 2.1.0 schema, and the validator does reject a broken log", () => {
    expect(sarifProblems(JSON.parse(text))).toEqual([]);
    const broken = JSON.parse(text) as { runs: [{ results: [{ level: string }] }] };
    broken.runs[0].results[0].level = "critical";
    expect(sarifProblems(broken)).toEqual([expect.stringMatching(/^\/runs\/0\/results\/0\/level: must be equal to one of the allowed values/)]);
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toMatchObject({ $schema: SARIF_SCHEMA, version: "2.1.0" });
  });

  it("has one result per drift, every drift code among them, rule ids = the codes and levels from the severities", () => {
    expect(run.results).toHaveLength(report.drifts.length);
    expect(new Set(run.results.map((r) => r.ruleId))).toEqual(
      new Set(["new-destination", "new-egress-from-tool", "dns-tunnelling", "new-port", "new-dns-name", "new-dns-record-type", "rate-exceeded", "new-tool"]),
    );
    for (const [i, d] of report.drifts.entries()) {
      expect(run.results[i]).toMatchObject({ ruleId: d.code, level: { high: "error", medium: "warning", low: "note" }[d.severity], message: { text: d.explanation } });
      expect(run.results[i]!.properties).toMatchObject({ severity: d.severity, subject: d.subject, failsGate: d.severity === "high" });
    }
    // One rule per code the core knows, most severe first, each with its own words.
    const rules = run.tool.driver.rules;
    const codes = Object.keys(DRIFT_SEVERITY) as DriftCode[];
    expect(new Set(rules.map((r) => r.id))).toEqual(new Set(codes));
    const order = { high: 0, medium: 1, low: 2 };
    expect(rules.map((r) => order[DRIFT_SEVERITY[r.id as DriftCode]])).toEqual([...rules.map((r) => order[DRIFT_SEVERITY[r.id as DriftCode]])].sort());
    for (const r of rules) {
      const severity = DRIFT_SEVERITY[r.id as DriftCode];
      expect([r.defaultConfiguration.level, r.properties["security-severity"]]).toEqual({ high: ["error", "8.0"], medium: ["warning", "5.5"], low: ["note", "3.0"] }[severity]);
      expect(ruleText(r.id as DriftCode).short, `${r.id} needs its words in src/baseline/sarif.ts`).not.toBe(r.id);
    }
    expect(run.results.every((r, _i) => rules[(r as unknown as { ruleIndex: number }).ruleIndex]?.id === r.ruleId)).toBe(true);
    expect(run.properties).toMatchObject({ server: "postmark", baseline: BASELINE_FILE, failOn: "high", counts: report.counts });
  });

  it("points each result at the baseline line it contradicts, or the section a new entry would join", () => {
    const section = (key: string): number => lineOf(BASELINE_TEXT, `\n  "${key}"`) + 1;
    const destinationsKey = section("destinations");
    const apiDestination = lineOf(BASELINE_TEXT, '"name": "api.mail.test"') - 1;
    const apiDns = lineOf(BASELINE_TEXT, '"name": "api.mail.test"', 2) - 1;
    const listTemplates = lineOf(BASELINE_TEXT, '"name": "list_templates"') - 1;
    const sendEmail = lineOf(BASELINE_TEXT, '"name": "send_email"') - 1;
    expect(where(result("new-destination", "collector.evil.test:443"))).toEqual([BASELINE_FILE, destinationsKey, 3]);
    expect(where(result("rate-exceeded", "api.mail.test:443"))).toEqual([BASELINE_FILE, apiDestination, 5]);
    expect(where(result("new-port", "api.mail.test:8443"))).toEqual([BASELINE_FILE, apiDestination, 5]);
    expect(where(result("new-dns-name", "sneaky.example"))).toEqual([BASELINE_FILE, section("dns"), 3]);
    expect(where(result("new-dns-record-type", "api.mail.test TXT"))).toEqual([BASELINE_FILE, apiDns, 5]);
    expect(where(result("new-tool", "stats"))).toEqual([BASELINE_FILE, section("tools"), 3]);
    expect(where(result("new-egress-from-tool", "list_templates"))).toEqual([BASELINE_FILE, listTemplates, 5]);
    expect(where(result("rate-exceeded", "send_email"))).toEqual([BASELINE_FILE, sendEmail, 5]);
    expect(where(result("dns-tunnelling", "*.tun.test"))).toEqual([BASELINE_FILE, section("tunnelling"), 3]);
    expect(result("new-port", "api.mail.test:8443").locations?.[0]?.message?.text).toBe("the baseline's entry for the same name (destinations[0]); api.mail.test:8443 is not in the baseline");
    expect(result("new-destination", "collector.evil.test:443").locations?.[0]?.message?.text).toBe("the baseline's destinations, which has no entry for collector.evil.test:443");
  });

  it("and destinations, names and tunnelling rules also at the policy's allow entry that admits them", () => {
    expect(policyLine(result("new-destination", "collector.evil.test:443"))).toEqual([9, "egress.allow[1] (*.evil.test) admits collector.evil.test:443"]);
    expect(policyLine(result("new-port", "api.mail.test:8443"))).toEqual([7, "egress.allow[0] (api.mail.test) admits the name of api.mail.test:8443, but not port 8443"]);
    expect(policyLine(result("new-destination", "10.1.2.3:5432"))).toEqual([13, "egress.allow[3] (10.0.0.0/8) admits 10.1.2.3:5432"]);
    expect(policyLine(result("new-dns-name", "sneaky.example"))).toEqual([5, "no egress.allow entry of the policy admits sneaky.example"]);
    expect(policyLine(result("dns-tunnelling", "*.tun.test"))).toEqual([11, "egress.allow[2] (*.tun.test) admits names under *.tun.test"]);
    expect(result("new-tool", "stats").relatedLocations).toBeUndefined();
    expect(result("new-destination", "collector.evil.test:443").relatedLocations?.[0]?.physicalLocation.artifactLocation.uri).toBe("policies/postmark.yaml");
  });

  it("reads a hand-edited baseline as written: an entry out of canonical order is found on its own line", () => {
    const loaded = JSON.parse(BASELINE_TEXT) as { tools: unknown[] };
    const reordered = JSON.stringify({ ...loaded, tools: [...loaded.tools].reverse() }, null, 2);
    const again = parse(driftReportSarif(report, { baseline: { file: BASELINE_FILE, text: reordered } }));
    const lt = again.runs[0].results.find((r) => r.ruleId === "new-egress-from-tool")!;
    expect(lt.locations?.[0]?.physicalLocation.region.startLine).toBe(lineOf(reordered, '"name": "list_templates"') - 1);
    expect(lt.relatedLocations).toBeUndefined();
  });

  it("fingerprints a finding by server, code and subject, so alerts follow it across runs whatever its line", () => {
    const fp = result("new-destination", "collector.evil.test:443").partialFingerprints["hangarDrift/v1"];
    expect(fp).toBe(fingerprint("postmark", "new-destination", "collector.evil.test:443"));
    expect(new Set(run.results.map((r) => r.partialFingerprints["hangarDrift/v1"])).size).toBe(run.results.length);
  });

  it("a run without drift is a valid log with no results; without files, results have no locations", () => {
    const clean: DriftReport = { ...report, ok: true, drifts: [], counts: { high: 0, medium: 0, low: 0 } };
    const empty = JSON.parse(driftReportSarif(clean)) as unknown;
    expect(sarifProblems(empty)).toEqual([]);
    expect((empty as { runs: [{ results: unknown[] }] }).runs[0].results).toEqual([]);
    const bare = JSON.parse(driftReportSarif(report)) as { runs: [{ results: Result[] }] };
    expect(sarifProblems(bare)).toEqual([]);
    expect(bare.runs[0].results.every((r) => r.locations === undefined)).toBe(true);
  });

  it("file URIs: relative paths stay relative (encoded), absolute ones become file: URIs", () => {
    expect(artifactUri("policies/my server.yaml")).toBe("policies/my%20server.yaml");
    expect(artifactUri("./baselines/a#b.json")).toBe("baselines/a%23b.json");
    expect(artifactUri("/srv/hangar/x.json")).toBe("file:///srv/hangar/x.json");
  });
});

describe("quarantine report as SARIF", () => {
  const ev = (at: number, fields: Omit<Parameters<typeof event>[0], "at">): ScenarioRun["events"][number] => event({ ...fields, at, server: "mail", reasons: ["capture"] });
  const run: ScenarioRun = {
    server: "mail",
    serverInfo: { name: "mail-server", version: "3.0.0" },
    tools: [
      { name: "send_email", inputSchema: { type: "object" } },
      { name: "list_templates", inputSchema: { type: "object" } },
    ],
    calls: [
      { tool: "send_email", arguments: {}, index: 0, repetition: 0, startedAt: T0, endedAt: T0 + 100, outcome: "ok" },
      { tool: "list_templates", arguments: {}, index: 1, repetition: 0, startedAt: T0 + 200, endedAt: T0 + 300, outcome: "ok" },
    ],
    events: [
      ev(T0 - 50, { name: "telemetry.vendor.test", port: 443, sni: "telemetry.vendor.test" }),
      ev(T0 + 10, { name: "api.mail.test", port: 443, sni: "api.mail.test", tools: ["send_email"] }),
      ev(T0 + 20, { name: "collector.evil.test", port: 443, sni: "collector.evil.test", tools: ["send_email"] }),
      ev(T0 + 210, { name: "collector.evil.test", port: 443, sni: "collector.evil.test", tools: ["list_templates"] }),
      ev(T0 + 220, { name: "collector.evil.test", port: 443, sni: "collector.evil.test", tools: ["list_templates"] }),
      ev(T0 + 230, { type: "dns", protocol: "dns", path: "dns", name: "lookup-only.test", recordType: "TXT", tools: ["list_templates"] }),
    ],
    droppedEvents: 0,
  };
  const report = buildQuarantineReport(run, { target: POLICY_FILE, capturePorts: [80, 443] });

  it("has one result per destination tried and per name only looked up, valid SARIF 2.1.0, at the policy's allow entry", () => {
    const sarif = parse(quarantineReportSarif(report, { policy: { file: POLICY_FILE, text: POLICY_TEXT, policy: policy() } }));
    expect(sarifProblems(sarif)).toEqual([]);
    const rows = sarif.runs[0].results.map((r) => [r.ruleId, r.level, r.message.text, where(r), r.locations?.[0]?.message?.text]);
    expect(rows).toEqual([
      ["new-destination", "note", "send_email tried to reach api.mail.test:443 (tls; SNI api.mail.test; 1 attempt)", [POLICY_FILE, 7, 7], "egress.allow[0] (api.mail.test) admits api.mail.test:443"],
      ["new-destination", "note", "list_templates and send_email tried to reach collector.evil.test:443 (tls; SNI collector.evil.test; 3 attempts)", [POLICY_FILE, 9, 7], "egress.allow[1] (*.evil.test) admits collector.evil.test:443"],
      ["new-destination", "error", "The server (outside any tool call) tried to reach telemetry.vendor.test:443 (tls; SNI telemetry.vendor.test; 1 attempt)", [POLICY_FILE, 5, 1], "no egress.allow entry of the policy admits telemetry.vendor.test:443"],
      ["new-dns-name", "warning", "list_templates looked up lookup-only.test (TXT; 1 query) and connected to nothing there", [POLICY_FILE, 5, 1], "no egress.allow entry of the policy admits lookup-only.test"],
    ]);
    expect(sarif.runs[0].properties).toMatchObject({ target: POLICY_FILE, server: "mail", toolsCalled: 2 });
  });

  it("for an npm: or image: target (no policy file of the user's) results carry no location, and still validate", () => {
    const sarif = parse(quarantineReportSarif({ ...report, target: "npm:mail-server@3.0.0" }));
    expect(sarifProblems(sarif)).toEqual([]);
    expect(sarif.runs[0].results.map((r) => [r.level, r.locations])).toEqual([
      ["error", undefined],
      ["error", undefined],
      ["error", undefined],
      ["warning", undefined],
    ]);
  });

  function where(r: Result): [string, number, number] | undefined {
    const l = r.locations?.[0]?.physicalLocation;
    return l === undefined ? undefined : [l.artifactLocation.uri, l.region.startLine, l.region.startColumn];
  }
});
