import { destinationKey, type Baseline, type FrozenBaseline } from "./baseline-schema.js";
import { detectDrift, type Drift, type DriftCode, type DriftOptions, type DriftSeverity, type DriftSubjectKind } from "./drift.js";

/**
 * A drift report: every drift, plus one check per behaviour the baseline expects (each
 * destination, DNS lookup and tool), so CI can show what held as well as what broke.
 */
export type CheckStatus = "pass" | "fail" | "not-exercised";

export interface BehaviourCheck {
  readonly kind: Exclude<DriftSubjectKind, "tunnelling">;
  readonly subject: string;
  readonly description: string;
  readonly status: CheckStatus;
  /** Codes of the drifts that concern this behaviour. */
  readonly drifts: readonly DriftCode[];
}

export interface DriftReport {
  readonly server: string;
  readonly ok: boolean;
  readonly baseline: { readonly file?: string; readonly frozenAt: string; readonly rateTolerance: number };
  /** What was compared, e.g. "replay of scenarios/send.yaml". */
  readonly run?: string;
  readonly counts: Readonly<Record<DriftSeverity, number>>;
  readonly drifts: readonly Drift[];
  readonly checks: readonly BehaviourCheck[];
}

export interface DriftReportOptions extends DriftOptions {
  readonly baselineFile?: string;
  readonly run?: string;
}

export function buildDriftReport(frozen: FrozenBaseline, observed: Baseline, options: DriftReportOptions = {}): DriftReport {
  const drifts = detectDrift(frozen, observed, options);
  const concerning = (kind: DriftSubjectKind, subject: string): DriftCode[] => drifts.filter((d) => d.kind === kind && d.subject === subject).map((d) => d.code);
  const check = (kind: BehaviourCheck["kind"], subject: string, description: string, seen: boolean): BehaviourCheck => {
    const codes = concerning(kind, subject);
    return { kind, subject, description, status: codes.length > 0 ? "fail" : seen ? "pass" : "not-exercised", drifts: codes };
  };

  const seenDestinations = new Set(observed.destinations.map(destinationKey));
  const seenDns = new Set(observed.dns.map((e) => `${e.name} ${e.type}`));
  const seenTools = new Set(observed.tools.map((t) => t.name));
  const checks = [
    ...frozen.destinations.map((d) => check("destination", destinationKey(d), `connects to ${destinationKey(d)}`, seenDestinations.has(destinationKey(d)))),
    ...frozen.dns.map((e) => check("dns", `${e.name} ${e.type}`, `looks up ${e.name} (${e.type})`, seenDns.has(`${e.name} ${e.type}`))),
    ...frozen.tools.map((t) => {
      const reaches = [...t.destinations, ...t.sharedDestinations];
      return check("tool", t.name, `tool ${t.name}${reaches.length > 0 ? ` reaches only ${reaches.join(", ")}` : " makes no connections"}`, seenTools.has(t.name));
    }),
  ];
  const counts = { high: 0, medium: 0, low: 0 };
  for (const d of drifts) counts[d.severity] += 1;
  return {
    server: frozen.server,
    ok: drifts.length === 0,
    baseline: { ...(options.baselineFile !== undefined ? { file: options.baselineFile } : {}), frozenAt: frozen.frozenAt, rateTolerance: options.rateTolerance ?? frozen.rateTolerance },
    ...(options.run !== undefined ? { run: options.run } : {}),
    counts,
    drifts,
    checks,
  };
}
