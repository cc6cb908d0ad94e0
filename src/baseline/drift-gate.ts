import type { DriftReport } from "../core/baseline/drift-report.js";
import type { DriftSeverity } from "../core/baseline/drift.js";

/**
 * The CI gate of `hangar replay --fail-on <severity>`: drifts at or above the severity fail
 * the run; the ones below are reported and let it pass. The default, low, fails on any
 * drift. Pure.
 */
export const DRIFT_SEVERITIES: readonly DriftSeverity[] = ["low", "medium", "high"];

export const DEFAULT_FAIL_ON: DriftSeverity = "low";

export function isDriftSeverity(value: string): value is DriftSeverity {
  return (DRIFT_SEVERITIES as readonly string[]).includes(value);
}

export function failsGate(severity: DriftSeverity, failOn: DriftSeverity): boolean {
  return DRIFT_SEVERITIES.indexOf(severity) >= DRIFT_SEVERITIES.indexOf(failOn);
}

/** The drifts that fail the gate; the run passes when there are none. */
export function gateFailures(report: DriftReport, failOn: DriftSeverity): DriftReport["drifts"] {
  return report.drifts.filter((d) => failsGate(d.severity, failOn));
}
