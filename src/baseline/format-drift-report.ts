import type { DriftSeverity } from "../core/baseline/drift.js";
import type { BehaviourCheck, CheckStatus, DriftReport } from "../core/baseline/drift-report.js";
import { DEFAULT_FAIL_ON, gateFailures } from "./drift-gate.js";
import { alignRows, plural, printable } from "./text-table.js";

/** The readable drift report, for terminals and CI logs; with a --fail-on gate, what it decided. Pure. */
export function formatDriftReport(report: DriftReport, options: { readonly failOn?: DriftSeverity } = {}): string {
  const lines: string[] = [];
  const against = `baseline${report.baseline.file !== undefined ? ` ${report.baseline.file}` : ""} (frozen at ${report.baseline.frozenAt}, rate tolerance ${report.baseline.rateTolerance}x)`;
  const what = report.run !== undefined ? `${report.run} of ${report.server}` : report.server;
  if (report.ok) {
    lines.push(`OK: ${what} behaves as its ${against}`);
  } else {
    const { high, medium, low } = report.counts;
    lines.push(`DRIFT: ${what} differs from its ${against}: ${plural(report.drifts.length, "drift")} (${high} high, ${medium} medium, ${low} low)`);
    lines.push("");
    lines.push(...alignRows(report.drifts.map((d) => [d.severity.toUpperCase(), d.code, d.explanation])));
    const failOn = options.failOn ?? DEFAULT_FAIL_ON;
    if (failOn !== DEFAULT_FAIL_ON) {
      const failing = gateFailures(report, failOn).length;
      lines.push("");
      const atOrAbove = failOn === "high" ? "high" : "medium or high";
      lines.push(failing > 0 ? `Gate --fail-on ${failOn}: FAILS: ${plural(failing, "drift")} ${failing === 1 ? "is" : "are"} ${atOrAbove}` : `Gate --fail-on ${failOn}: passes: no drift is ${atOrAbove}`);
    }
  }

  const tally = (status: CheckStatus): number => report.checks.filter((c) => c.status === status).length;
  lines.push("");
  lines.push(`Expected behaviour: ${tally("pass")} held, ${tally("fail")} failed, ${tally("not-exercised")} not exercised by this run`);
  const mark: Readonly<Record<CheckStatus, string>> = { pass: "ok", fail: "FAIL", "not-exercised": "--" };
  const detail = (c: BehaviourCheck): string => (c.drifts.length > 0 ? `${c.description} (${c.drifts.join(", ")})` : c.description);
  lines.push(...alignRows(report.checks.map((c) => [mark[c.status], detail(c)])));
  return `${lines.map(printable).join("\n")}\n`;
}

/** The machine-readable report: stable keys, one document. */
export function driftReportJson(report: DriftReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
