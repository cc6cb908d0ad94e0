import { describe, expect, it } from "vitest";
import { buildDriftReport, detectDrift, DriftWatch, freezeBaseline, recordBaseline, type Baseline, type FrozenBaseline, type Observation } from "../../src/core/baseline/index.js";
import { call, connection, event, mailRun, obs, T0 } from "./support/observations.js";

const learn = (observations: Observation[]): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, observations);
const frozenV1 = (): FrozenBaseline => freezeBaseline(learn(mailRun()), new Date("2025-03-02T09:00:00.000Z"));
const driftsOf = (observations: Observation[], frozen = frozenV1()) => detectDrift(frozen, learn(observations));
const dnsQuery = (name: string, recordType: string, at: number, tools: string[]) => obs(event({ at, type: "dns", protocol: "dns", path: "dns", name, recordType, tools }));

describe("drift rules", () => {
  it("finds nothing when the run behaves like the baseline", () => {
    expect(driftsOf(mailRun())).toEqual([]);
    // Fewer calls than the baseline is not drift either.
    expect(driftsOf(mailRun({ calls: 1 }))).toEqual([]);
  });

  it("new-destination: names the host and the tool (v2 posts a copy to a collector)", () => {
    expect(driftsOf(mailRun({ copies: ["collector.evil.test"] }))).toEqual([
      {
        code: "new-destination",
        severity: "high",
        kind: "destination",
        subject: "collector.evil.test:443",
        tools: ["send_email"],
        explanation: "send_email connected to collector.evil.test:443, which the baseline never saw",
      },
    ]);
  });

  it("new-destination even for a name a wildcard rule would allow, and outside any tool call", () => {
    const drifts = driftsOf([...mailRun(), ...connection("cdn.mail.test", 443, T0 + 1000, [])]);
    expect(drifts.map((d) => [d.code, d.explanation])).toEqual([["new-destination", "The server (outside any tool call) connected to cdn.mail.test:443, which the baseline never saw"]]);
  });

  it("new-port: a known host on a port the baseline never saw", () => {
    const drifts = driftsOf([...mailRun(), ...connection("api.mail.test", 8443, T0 + 1000, ["send_email"])]);
    expect(drifts).toEqual([
      { code: "new-port", severity: "medium", kind: "destination", subject: "api.mail.test:8443", tools: ["send_email"], explanation: "send_email connected to api.mail.test on port 8443; the baseline only saw port 443" },
    ]);
  });

  it("new-dns-name and new-dns-record-type", () => {
    const drifts = driftsOf([...mailRun(), dnsQuery("status.mail.test", "A", T0 + 1, ["send_email"]), dnsQuery("api.mail.test", "TXT", T0 + 2, ["send_email"])]);
    expect(drifts.map((d) => [d.code, d.severity, d.subject, d.explanation])).toEqual([
      ["new-dns-name", "medium", "status.mail.test", "send_email looked up status.mail.test (A), which the baseline never saw"],
      ["new-dns-record-type", "medium", "api.mail.test TXT", "send_email asked for TXT records of api.mail.test; the baseline only saw A lookups for it"],
    ]);
  });

  it("does not repeat a new destination's DNS lookup as a second drift", () => {
    const codes = driftsOf(mailRun({ copies: ["collector.evil.test"] })).map((d) => d.code);
    expect(codes).toEqual(["new-destination"]);
  });

  it("new-tool", () => {
    const drifts = driftsOf([...mailRun(), call("delete_templates", T0 + 5), call("delete_templates", T0 + 6)]);
    expect(drifts).toEqual([
      { code: "new-tool", severity: "low", kind: "tool", subject: "delete_templates", tools: ["delete_templates"], explanation: "delete_templates was called 2 times, a tool the baseline never saw" },
    ]);
  });

  it("new-egress-from-tool: a tool that made no connections now does", () => {
    const drifts = driftsOf([...mailRun(), ...connection("api.mail.test", 443, T0 + 41_000, ["list_templates"])]);
    expect(drifts).toEqual([
      {
        code: "new-egress-from-tool",
        severity: "high",
        kind: "tool",
        subject: "list_templates",
        tools: ["list_templates"],
        explanation: "list_templates connected to api.mail.test:443; in the baseline it made no connections",
      },
    ]);
  });

  it("does not blame a quiet tool for a connection another tool in flight made in the baseline", () => {
    const drifts = driftsOf([...mailRun(), ...connection("api.mail.test", 443, T0 + 41_000, ["list_templates", "send_email"])]);
    expect(drifts).toEqual([]);
  });

  it("rate-exceeded: connections (v3 opens 10 times as many per call)", () => {
    const drifts = driftsOf(mailRun({ connectionsPerCall: 10 }));
    expect(drifts).toEqual([
      {
        code: "rate-exceeded",
        severity: "medium",
        kind: "destination",
        subject: "api.mail.test:443",
        tools: ["send_email"],
        explanation: "send_email opened 30 connections a minute to api.mail.test:443, above 2x the baseline's highest of 3",
        observed: 30,
        limit: 6,
      },
    ]);
  });

  it("rate-exceeded: tool calls, and not at exactly the tolerance", () => {
    expect(driftsOf(mailRun({ calls: 6 }))).toEqual([]);
    const drifts = driftsOf([...mailRun({ calls: 5 }).filter((o) => o.kind === "tool-call"), ...Array.from({ length: 2 }, (_, i) => call("send_email", T0 + 30_000 + i))]);
    expect(drifts.map((d) => [d.code, d.kind, d.explanation, d.observed, d.limit])).toEqual([["rate-exceeded", "tool", "send_email was called 7 times a minute, above 2x the baseline's highest of 3", 7, 6]]);
  });

  it("honours a tolerance given by the caller over the baseline's own", () => {
    const observed = learn(mailRun({ connectionsPerCall: 10 }));
    expect(detectDrift(frozenV1(), observed, { rateTolerance: 10 })).toEqual([]);
  });

  it("dns-tunnelling: signals the baseline never showed under that rule", () => {
    const tunnel = obs(
      event({ at: T0 + 3, type: "dns", protocol: "dns", path: "dns", name: "mzxw6ytboi4dqnzsgm2tmnzygu3tqobz.x.mail.test", recordType: "A", verdict: "would-block", reasons: ["tunnel-entropy"], rule: "*.mail.test", tools: ["send_email"] }),
    );
    expect(driftsOf([...mailRun(), tunnel])).toEqual([
      {
        code: "dns-tunnelling",
        severity: "high",
        kind: "tunnelling",
        subject: "*.mail.test",
        tools: ["send_email"],
        explanation: "send_email asked for names under *.mail.test that look like DNS tunnelling (random-looking labels), such as mzxw6ytboi4dqnzsgm2tmnzygu3tqobz.x.mail.test",
      },
    ]);
    // A baseline that already showed the same signal under the same rule: not new.
    const frozen = freezeBaseline(learn([...mailRun(), tunnel]), new Date(T0));
    expect(driftsOf([...mailRun(), tunnel], frozen)).toEqual([]);
  });

  it("orders drifts by severity, then code, then subject", () => {
    const drifts = driftsOf([...mailRun({ copies: ["z.evil.test", "a.evil.test"] }), call("new_tool", T0), ...connection("api.mail.test", 25, T0, ["send_email"])]);
    expect(drifts.map((d) => `${d.severity} ${d.code} ${d.subject}`)).toEqual([
      "high new-destination a.evil.test:443",
      "high new-destination z.evil.test:443",
      "medium new-port api.mail.test:25",
      "low new-tool new_tool",
    ]);
  });

  it("names several tools in flight together", () => {
    const drifts = driftsOf([...mailRun(), call("read_inbox", T0), ...connection("x.evil.test", 443, T0 + 5, ["send_email", "read_inbox"])]);
    const d = drifts.find((x) => x.code === "new-destination");
    expect(d?.explanation).toBe("read_inbox or send_email (in flight together) connected to x.evil.test:443, which the baseline never saw");
  });
});

describe("drift report", () => {
  it("lists one check per expected behaviour and marks what failed or was not exercised", () => {
    const report = buildDriftReport(frozenV1(), learn(mailRun({ connectionsPerCall: 10 }).filter((o) => o.kind !== "tool-call" || o.tool !== "list_templates")), { baselineFile: "b.json", run: "replay of s.yaml" });
    expect(report.ok).toBe(false);
    expect(report.counts).toEqual({ high: 0, medium: 1, low: 0 });
    expect(report.baseline).toEqual({ file: "b.json", frozenAt: "2025-03-02T09:00:00.000Z", rateTolerance: 2 });
    expect(report.checks).toEqual([
      { kind: "destination", subject: "api.mail.test:443", description: "connects to api.mail.test:443", status: "fail", drifts: ["rate-exceeded"] },
      { kind: "dns", subject: "api.mail.test A", description: "looks up api.mail.test (A)", status: "pass", drifts: [] },
      { kind: "tool", subject: "list_templates", description: "tool list_templates makes no connections", status: "not-exercised", drifts: [] },
      { kind: "tool", subject: "send_email", description: "tool send_email reaches only api.mail.test:443", status: "pass", drifts: [] },
    ]);
  });
});

describe("DriftWatch over a live stream", () => {
  it("reports each drift once, as soon as it is polled after it happens", () => {
    const watch = new DriftWatch(frozenV1());
    for (const o of mailRun()) watch.observe(o);
    expect(watch.poll()).toEqual([]);
    for (const o of connection("collector.evil.test", 443, T0 + 45_000, ["send_email"])) watch.observe(o);
    expect(watch.poll().map((d) => d.explanation)).toEqual(["send_email connected to collector.evil.test:443, which the baseline never saw"]);
    for (const o of connection("collector.evil.test", 443, T0 + 46_000, ["send_email"])) watch.observe(o);
    expect(watch.poll()).toEqual([]);
  });
});
