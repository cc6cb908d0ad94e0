import type { BaselineView } from "../decision.js";
import { destinationKey, type Baseline, type FrozenBaseline } from "./baseline-schema.js";
import { canonicalBaseline } from "./canonical.js";
import { toRequestShapeView, type RequestShapeView } from "./request-drift.js";

/**
 * What the decision function needs from a frozen baseline. A name the server connected to
 * counts as a known DNS name too: a server learned through the explicit proxy never asked
 * DNS for it, and an A query for a name it already reaches reveals nothing new.
 * `requests` is for `checkRequestShape`, per HTTP request the sidecar sees.
 */
export function toBaselineView(baseline: FrozenBaseline): BaselineView & { readonly requests: RequestShapeView } {
  const destinations = new Set(baseline.destinations.map(destinationKey));
  const names = new Set(baseline.destinations.map((d) => d.name));
  const dnsNames = new Set([...baseline.dns.map((d) => d.name), ...names]);
  // A maximum of 0 (a hand-edited file) would make every connection drift; it means "unknown".
  const maxConnectionsPerMinute = new Map(baseline.destinations.filter((d) => d.perMinute.max > 0).map((d) => [destinationKey(d), d.perMinute.max] as const));
  return { destinations, names, dnsNames, maxConnectionsPerMinute, rateTolerance: baseline.rateTolerance, requests: toRequestShapeView(baseline) };
}

/** learning → frozen. Freezing a frozen baseline changes nothing (its `frozenAt` stays). */
export function freezeBaseline(baseline: Baseline, at: Date): FrozenBaseline {
  if (baseline.status === "frozen" && baseline.frozenAt !== undefined) return baseline as FrozenBaseline;
  return canonicalBaseline({ ...baseline, status: "frozen", frozenAt: at.toISOString() }) as FrozenBaseline;
}
