import { describe, expect, it } from "vitest";
import { formatEgressRules } from "../../src/baseline/index.js";
import { freezeBaseline, recordBaseline, toBaselineView, type Baseline, type Observation } from "../../src/core/baseline/index.js";
import { decide } from "../../src/core/decision.js";
import { parsePolicyText } from "../../src/policy/index.js";
import { connection, event, mailRun, obs, T0 } from "./support/observations.js";

const AT = new Date("2025-03-02T09:00:00.000Z");
const learn = (observations: Observation[]): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, observations);

/** What a user does: paste the printed section under a policy's own header. */
function pasteIntoPolicy(egressYaml: string): ReturnType<typeof parsePolicyText> {
  const text = ["version: 1", "name: postmark", "server:", "  image:", "    ref: hangar-fixture/mail:1", "", egressYaml].join("\n");
  return parsePolicyText(text, "pasted.yaml");
}

/** Every attempt the baseline saw must be allowed in ENFORCING, with the baseline frozen. */
function expectAllowedInEnforcing(baseline: Baseline, egressYaml: string): void {
  const loaded = pasteIntoPolicy(egressYaml);
  if (!loaded.ok) throw new Error(`policy rejected: ${JSON.stringify(loaded.issues)}`);
  expect(loaded.warnings).toEqual([]);
  const ctx = { policy: loaded.compiled, mode: loaded.policy.egress.mode, baseline: toBaselineView(freezeBaseline(baseline, AT)) };
  expect(ctx.mode).toBe("enforcing");
  for (const d of baseline.destinations) {
    const literal = /^[\d.]+$/.test(d.name);
    const attempt = literal ? { stage: "connect" as const, protocol: "connect" as const, ip: d.name, port: d.port } : { stage: "connect" as const, protocol: "tls" as const, name: d.name, port: d.port, connectionsPerMinute: d.perMinute.max };
    expect(decide(ctx, attempt).verdict, `${d.name}:${d.port}`).toBe("allow");
  }
  for (const e of baseline.dns.filter((x) => x.type !== "AAAA" && x.type !== "MX")) {
    expect(decide(ctx, { stage: "dns", protocol: "dns", name: e.name, recordType: e.type }).verdict, `${e.name} ${e.type}`).toBe("allow");
  }
}

describe("baseline to-policy", () => {
  it("prints the exact hosts and ports v1 needs, and the policy loader accepts them", () => {
    const v1 = freezeBaseline(learn(mailRun()), AT);
    const text = formatEgressRules(v1);
    expect(text).toBe(
      [
        "# Egress rules for postmark, from its frozen baseline (frozen at 2025-03-02T09:00:00.000Z).",
        "# Paste at the top level of the policy, replacing its egress section.",
        "egress:",
        "  allow:",
        "    - host: api.mail.test",
        "      ports: [443]",
        "",
      ].join("\n"),
    );
    expectAllowedInEnforcing(v1, text);
  });

  it("groups ports per host, hosts per domain, and adds CIDRs, DNS-only names and record types", () => {
    const dns = (name: string, recordType: string) => obs(event({ at: T0, type: "dns", protocol: "dns", path: "dns", name, recordType }));
    const b = learn([
      ...connection("smtp.mail.test", 587, T0, []),
      ...connection("api.mail.test", 443, T0, []),
      ...connection("api.mail.test", 80, T0, []),
      ...connection("api.other.test", 443, T0, []),
      ...connection("localhost", 443, T0, []),
      obs(event({ at: T0, ip: "10.1.2.3", port: 5432, protocol: "connect" })),
      dns("_dmarc.mail.test", "TXT"),
      dns("api.mail.test", "HTTPS"),
      dns("api.mail.test", "AAAA"),
      dns("mail.test", "MX"),
      obs(event({ at: T0, type: "dns", protocol: "dns", path: "dns", name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x.test", reasons: ["tunnel-long-label"], rule: "*.x.test" })),
    ]);
    const text = formatEgressRules(b);
    expect(text).toBe(
      [
        "# Egress rules for postmark, from its baseline (still learning).",
        "# Paste at the top level of the policy, replacing its egress section.",
        "# The server also asked for AAAA, MX records, which Hangar never answers.",
        "# Names that looked like DNS tunnelling were seen under *.x.test; no rule is suggested for them.",
        "egress:",
        "  allow:",
        '    - host: "localhost"',
        "      ports: [443]",
        "    # looked up but never connected to; only declared names are answered",
        "    - host: mail.test",
        "      ports: [443]",
        "    # looked up but never connected to; only declared names are answered",
        "    - host: _dmarc.mail.test",
        "      ports: [443]",
        "    - host: api.mail.test",
        "      ports: [80, 443]",
        "    - host: smtp.mail.test",
        "      ports: [587]",
        "    - host: api.other.test",
        "      ports: [443]",
        "    - cidr: 10.1.2.3/32",
        "      ports: [5432]",
        "  dns:",
        "    recordTypes: [A, TXT, HTTPS]",
        "",
      ].join("\n"),
    );
    expectAllowedInEnforcing(b, text);
  });

  it("prints an empty allow list for a server that reaches nothing, which loads as no egress", () => {
    const text = formatEgressRules(learn([]));
    expect(text).toContain("egress:\n  allow: []\n");
    const loaded = pasteIntoPolicy(text);
    expect(loaded.ok && loaded.policy.egress.allow).toEqual([]);
  });
});
