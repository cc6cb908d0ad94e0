import type { Drift, DriftSeverity } from "../core/baseline/drift.js";
import type { BehaviourCheck, DriftReport } from "../core/baseline/drift-report.js";
import { DEFAULT_FAIL_ON, failsGate } from "./drift-gate.js";

/**
 * The drift report as JUnit XML, for CI test tabs: one testcase per behaviour the baseline
 * expects (failed when a drift concerns it, skipped when the run did not exercise it) and
 * one failing testcase per drift that concerns no expected behaviour (a new destination,
 * a new tool). Failures carry the one-sentence explanation. A drift below the CI gate
 * (--fail-on) fails nothing: its testcase passes and says what drifted in system-out. Pure.
 */
export function driftReportJunit(report: DriftReport, options: { readonly failOn?: DriftSeverity } = {}): string {
  const failOn = options.failOn ?? DEFAULT_FAIL_ON;
  const suite = `hangar.${report.server}`;
  const attached = new Set<Drift>();
  const cases: string[] = [];

  for (const check of report.checks) {
    const drifts = report.drifts.filter((d) => d.kind === check.kind && d.subject === check.subject);
    for (const d of drifts) attached.add(d);
    cases.push(checkCase(suite, check, drifts, failOn));
  }
  for (const d of report.drifts) {
    if (attached.has(d)) continue;
    const body = failsGate(d.severity, failOn) ? failure(d.code, d.explanation, [d]) : belowGate([d], failOn);
    cases.push(testcase(`${suite}.drift`, `${d.code}: ${d.subject}`, body));
  }

  const failures = cases.filter((c) => c.includes("<failure")).length;
  const skipped = cases.filter((c) => c.includes("<skipped")).length;
  const counts = `tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  const properties = [
    ["server", report.server],
    ...(report.baseline.file !== undefined ? [["baseline", report.baseline.file]] : []),
    ["frozenAt", report.baseline.frozenAt],
    ["rateTolerance", String(report.baseline.rateTolerance)],
    ...(report.run !== undefined ? [["run", report.run]] : []),
    ...(failOn !== DEFAULT_FAIL_ON ? [["failOn", failOn]] : []),
  ].map(([name, value]) => `      <property name="${attr(name!)}" value="${attr(value!)}"/>`);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="hangar drift" ${counts}>`,
    `  <testsuite name="${attr(suite)}" ${counts}>`,
    `    <properties>`,
    ...properties,
    `    </properties>`,
    ...cases,
    `  </testsuite>`,
    `</testsuites>`,
    "",
  ].join("\n");
}

function checkCase(suite: string, check: BehaviourCheck, drifts: readonly Drift[], failOn: DriftSeverity): string {
  const classname = `${suite}.${check.kind}`;
  const failing = drifts.filter((d) => failsGate(d.severity, failOn));
  if (failing.length > 0) return testcase(classname, check.description, failure(failing.map((d) => d.code).join(", "), failing.map((d) => d.explanation).join(" "), drifts));
  if (drifts.length > 0) return testcase(classname, check.description, belowGate(drifts, failOn));
  if (check.status === "not-exercised") return testcase(classname, check.description, `<skipped message="not exercised by this run"/>`);
  return testcase(classname, check.description);
}

function testcase(classname: string, name: string, body?: string): string {
  const open = `    <testcase classname="${attr(classname)}" name="${attr(name)}"`;
  return body === undefined ? `${open}/>` : `${open}>\n      ${body}\n    </testcase>`;
}

function belowGate(drifts: readonly Drift[], failOn: DriftSeverity): string {
  return `<system-out>${text(`below --fail-on ${failOn}, so not failing:\n${details(drifts)}`)}</system-out>`;
}

function details(drifts: readonly Drift[]): string {
  return drifts.map((d) => `${d.code} (${d.severity}) on ${d.subject}; tools: ${d.tools.length > 0 ? d.tools.join(", ") : "none in flight"}\n${d.explanation}`).join("\n\n");
}

function failure(type: string, message: string, drifts: readonly Drift[]): string {
  return `<failure type="${attr(type)}" message="${attr(message)}">${text(details(drifts))}</failure>`;
}

// XML 1.0 cannot carry most control characters even as references: show them instead.
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const visible = (s: string): string => s.replace(NOT_XML, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

function text(s: string): string {
  return visible(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function attr(s: string): string {
  return text(s).replace(/"/g, "&quot;").replace(/'/g, "&apos;").replace(/\n/g, "&#10;").replace(/\r/g, "&#13;").replace(/\t/g, "&#9;");
}
