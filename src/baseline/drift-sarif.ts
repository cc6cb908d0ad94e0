import { splitRef } from "../core/baseline/canonical.js";
import type { Drift, DriftSeverity } from "../core/baseline/drift.js";
import type { DriftReport } from "../core/baseline/drift-report.js";
import type { Policy } from "../core/policy/policy-schema.js";
import { createBaselineLocator, type BaselineSpot } from "./baseline-locator.js";
import { failsGate } from "./drift-gate.js";
import { createPolicyRuleLocator, policyNote, type PolicyRuleLocator, type PolicyRuleSpot } from "./policy-rule-locator.js";
import { fingerprint, ruleIndex, SARIF_LEVEL, SARIF_SCHEMA, SARIF_VERSION, sarifLocation, sarifRules, sarifText, type SarifLocation, type SarifResult } from "./sarif.js";

/**
 * The drift report as SARIF 2.1.0, for code-scanning tabs: one result per drift, its rule
 * the drift code, its level from the drift's severity. A result points at the baseline
 * entry it contradicts (or the section a new entry would join) and, for destinations and
 * names, at the policy's allow entry that admits them. Pure: the files' texts come in.
 */
export interface DriftSarifOptions {
  /** The frozen baseline compared with, as its file reads. */
  readonly baseline?: { readonly file: string; readonly text: string };
  /** The policy the run used, and its file's text. */
  readonly policy?: { readonly file: string; readonly text: string; readonly policy: Policy };
  readonly toolVersion?: string;
  /** The CI gate (--fail-on): recorded on the run and on each result. */
  readonly failOn?: DriftSeverity;
}

export function driftReportSarif(report: DriftReport, options: DriftSarifOptions = {}): string {
  const { baseline, policy, failOn } = options;
  const baselineAt = baseline !== undefined ? createBaselineLocator(baseline.text) : undefined;
  const policyAt = policy !== undefined ? createPolicyRuleLocator(policy.policy, policy.text) : undefined;

  const results = report.drifts.map((d): SarifResult => {
    const spot = baselineAt?.(d.kind, d.subject);
    const inBaseline = baseline !== undefined && spot !== undefined ? sarifLocation({ file: baseline.file, line: spot.line, column: spot.column, message: baselineNote(d, spot) }) : undefined;
    const inPolicy = policy !== undefined && policyAt !== undefined ? policyLocation(d, policy.file, policyAt) : undefined;
    const [primary, ...related] = [inBaseline, inPolicy].filter((l): l is SarifLocation => l !== undefined);
    return {
      ruleId: d.code,
      ruleIndex: ruleIndex(d.code),
      level: SARIF_LEVEL[d.severity],
      message: { text: d.explanation },
      ...(primary !== undefined ? { locations: [primary] } : {}),
      ...(related.length > 0 ? { relatedLocations: related.map((l, i) => ({ id: i + 1, ...l })) } : {}),
      partialFingerprints: { "hangarDrift/v1": fingerprint(report.server, d.code, d.subject, ...detailOf(d)) },
      properties: {
        severity: d.severity,
        kind: d.kind,
        subject: d.subject,
        tools: d.tools,
        ...(d.observed !== undefined ? { observedPerMinute: d.observed } : {}),
        ...(d.limit !== undefined ? { limitPerMinute: d.limit } : {}),
        ...("request" in d && d.request !== undefined ? { request: d.request } : {}),
        ...(failOn !== undefined ? { failsGate: failsGate(d.severity, failOn) } : {}),
      },
    };
  });

  return sarifText({
    $schema: SARIF_SCHEMA,
    version: SARIF_VERSION,
    runs: [
      {
        tool: { driver: { name: "hangar", ...(options.toolVersion !== undefined ? { version: options.toolVersion } : {}), rules: sarifRules() } },
        automationDetails: { id: `hangar-replay/${report.server}/` },
        invocations: [{ executionSuccessful: true }],
        results,
        properties: {
          server: report.server,
          ...(report.baseline.file !== undefined ? { baseline: report.baseline.file } : {}),
          frozenAt: report.baseline.frozenAt,
          rateTolerance: report.baseline.rateTolerance,
          ...(report.run !== undefined ? { run: report.run } : {}),
          counts: report.counts,
          ...(failOn !== undefined ? { failOn } : {}),
        },
      },
    ],
  });
}

/** What tells apart drifts of one code on one subject (request drifts: the route and field). */
function detailOf(d: Drift): string[] {
  return "request" in d && d.request !== undefined ? [JSON.stringify(d.request)] : [];
}

function baselineNote(d: Drift, spot: BaselineSpot): string {
  const at = spot.path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join("");
  if (spot.found === "entry") return `the baseline's entry for ${d.subject} (${at})`;
  if (spot.found === "same-name") return `the baseline's entry for the same name (${at}); ${d.subject} is not in the baseline`;
  return `the baseline's ${at}, which has no entry for ${d.subject}`;
}

/** Destinations, names and tunnelling rules are decided by an allow entry; tools by none. */
function policyLocation(d: Drift, file: string, at: PolicyRuleLocator): SarifLocation | undefined {
  let spot: PolicyRuleSpot;
  let what: string;
  let port: number | undefined;
  if (d.kind === "destination") {
    const [name, p] = splitRef(d.subject);
    [spot, what, port] = [at.forDestination(name, p), d.subject, p];
  } else if (d.kind === "dns") {
    const name = d.subject.split(" ")[0] ?? d.subject;
    [spot, what] = [at.forDestination(name), name];
  } else if (d.kind === "tunnelling") {
    [spot, what] = [at.forPattern(d.subject), `names under ${d.subject}`];
  } else {
    return undefined;
  }
  return sarifLocation({ file, line: spot.line, column: spot.column, message: policyNote(spot, what, port) });
}
