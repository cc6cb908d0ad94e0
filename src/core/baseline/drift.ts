import { byDestinationRef, byText } from "./canonical.js";
import { destinationKey, type Baseline, type FrozenBaseline, type TunnellingSignal } from "./baseline-schema.js";
import { requestDriftSentence, routeDrift, toRequestShapeView, type RequestDriftCode, type RequestFieldPlace } from "./request-drift.js";

/**
 * Drift rules: what an observed run did that its frozen baseline never showed. Pure.
 * The observed run is itself a baseline (from a replay, or a recorder fed a live stream),
 * so both sides are compared in one shape. Codes are stable; tooling matches on them.
 */
export type DriftCode =
  | "new-destination"
  | "new-port"
  | "new-dns-name"
  | "new-dns-record-type"
  | "new-tool"
  | "new-egress-from-tool"
  | "rate-exceeded"
  | "dns-tunnelling"
  | RequestDriftCode;

export type DriftSeverity = "low" | "medium" | "high";
export type DriftSubjectKind = "destination" | "dns" | "tool" | "tunnelling";

export interface Drift {
  readonly code: DriftCode;
  readonly severity: DriftSeverity;
  /** What the drift is about: a destination (`name:port`), a DNS name, a tool or a tunnelling rule. */
  readonly kind: DriftSubjectKind;
  readonly subject: string;
  /** The tool calls in flight when it happened; empty when none was. */
  readonly tools: readonly string[];
  /** One sentence naming the destination or tool. */
  readonly explanation: string;
  /** Request drifts (kind `destination`): the route, and for `new-request-field` the new name. */
  readonly request?: { readonly method: string; readonly path: string; readonly field?: { readonly place: RequestFieldPlace; readonly name: string } };
  /** Rate drifts: the observed per-minute rate and the most the baseline tolerates. */
  readonly observed?: number;
  readonly limit?: number;
}

export const DRIFT_SEVERITY: Readonly<Record<DriftCode, DriftSeverity>> = {
  "new-destination": "high",
  "new-egress-from-tool": "high",
  "dns-tunnelling": "high",
  "new-request-field": "high",
  "body-not-inspected": "high",
  "new-http-route": "medium",
  "new-port": "medium",
  "new-dns-name": "medium",
  "new-dns-record-type": "medium",
  "rate-exceeded": "medium",
  "new-tool": "low",
};

const SEVERITY_RANK: Readonly<Record<DriftSeverity, number>> = { high: 0, medium: 1, low: 2 };

export interface DriftOptions {
  /** Overrides the frozen baseline's own `rateTolerance`. */
  readonly rateTolerance?: number;
}

const SIGNAL_TEXT: Readonly<Record<TunnellingSignal, string>> = {
  "tunnel-long-label": "very long labels",
  "tunnel-entropy": "random-looking labels",
  "tunnel-unique-rate": "many new names a minute",
  "tunnel-bits": "names holding more than a real name does",
  "tunnel-bits-rate": "more data in new names a minute than real names carry",
  "tunnel-budget": "more distinct names than the lookup budget allows",
};

/** "send_email", "send_email or read_file (in flight together)", "The server (outside any tool call)". */
export function whoText(tools: readonly string[]): string {
  if (tools.length === 0) return "The server (outside any tool call)";
  if (tools.length === 1) return tools[0]!;
  return `${tools.slice(0, -1).join(", ")} or ${tools.at(-1)!} (in flight together)`;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
const listText = (xs: readonly string[], max = 3): string => (xs.length <= max ? xs.join(", ") : `${xs.slice(0, max).join(", ")} and ${xs.length - max} more`);
const round = (n: number): number => Math.round(n * 100) / 100;

export function detectDrift(frozen: FrozenBaseline, observed: Baseline, options: DriftOptions = {}): Drift[] {
  const tolerance = options.rateTolerance ?? frozen.rateTolerance;
  const drifts: Drift[] = [];
  const add = (code: DriftCode, kind: DriftSubjectKind, subject: string, tools: readonly string[], explanation: string, extra?: { observed: number; limit: number } | { request: NonNullable<Drift["request"]> }): void => {
    drifts.push({ code, severity: DRIFT_SEVERITY[code], kind, subject, tools: [...tools].sort(byText), explanation, ...(extra ?? {}) });
  };

  // Destinations: new ones, new ports on known names, and connection rates.
  const baseDestinations = new Map(frozen.destinations.map((d) => [destinationKey(d), d] as const));
  const basePorts = new Map<string, number[]>();
  for (const d of frozen.destinations) basePorts.set(d.name, [...(basePorts.get(d.name) ?? []), d.port]);
  const newNames = new Set<string>();
  for (const d of observed.destinations) {
    const key = destinationKey(d);
    const base = baseDestinations.get(key);
    const who = whoText(d.tools);
    if (base === undefined) {
      const ports = basePorts.get(d.name);
      if (ports === undefined) {
        newNames.add(d.name);
        add("new-destination", "destination", key, d.tools, `${who} connected to ${key}, which the baseline never saw`);
      } else {
        add("new-port", "destination", key, d.tools, `${who} connected to ${d.name} on port ${d.port}; the baseline only saw ${ports.length === 1 ? "port" : "ports"} ${ports.sort((a, b) => a - b).join(", ")}`);
      }
    } else if (base.perMinute.max > 0 && d.perMinute.max > tolerance * base.perMinute.max) {
      const limit = round(tolerance * base.perMinute.max);
      add("rate-exceeded", "destination", key, d.tools, `${who} opened ${d.perMinute.max} connections a minute to ${key}, above ${tolerance}x the baseline's highest of ${base.perMinute.max}`, { observed: d.perMinute.max, limit });
    }
  }

  // Requests on known destinations: new routes, new names on known routes, unreadable bodies.
  const baseRoutes = toRequestShapeView(frozen).routes;
  for (const d of observed.destinations) {
    const key = destinationKey(d);
    const base = baseRoutes.get(key);
    if (base === undefined) continue;
    for (const r of d.requests ?? []) {
      for (const finding of routeDrift(base, r)) {
        const request = { method: r.method, path: r.path, ...(finding.field !== undefined ? { field: finding.field } : {}) };
        add(finding.code, "destination", key, r.tools, requestDriftSentence(whoText(r.tools), key, r, finding), { request });
      }
    }
  }

  // DNS: names never asked (unless already reported as a new destination) and new record types.
  const baseTypes = new Map<string, Set<string>>();
  for (const d of frozen.destinations) baseTypes.set(d.name, new Set(["A"]));
  for (const e of frozen.dns) (baseTypes.get(e.name) ?? baseTypes.set(e.name, new Set()).get(e.name)!).add(e.type);
  const observedByName = new Map<string, { types: string[]; tools: Set<string> }>();
  for (const e of observed.dns) {
    const entry = observedByName.get(e.name) ?? { types: [], tools: new Set<string>() };
    entry.types.push(e.type);
    for (const t of e.tools) entry.tools.add(t);
    observedByName.set(e.name, entry);
  }
  for (const [name, { types }] of observedByName) {
    const known = baseTypes.get(name);
    const toolsFor = (type?: string): string[] => [...new Set(observed.dns.filter((e) => e.name === name && (type === undefined || e.type === type)).flatMap((e) => e.tools))];
    if (known === undefined) {
      if (newNames.has(name)) continue;
      const tools = toolsFor();
      add("new-dns-name", "dns", name, tools, `${whoText(tools)} looked up ${name} (${types.sort(byText).join(", ")}), which the baseline never saw`);
      continue;
    }
    for (const type of types.filter((t) => !known.has(t)).sort(byText)) {
      const tools = toolsFor(type);
      add("new-dns-record-type", "dns", `${name} ${type}`, tools, `${whoText(tools)} asked for ${type} records of ${name}; the baseline only saw ${[...known].sort(byText).join(", ")} lookups for it`);
    }
  }

  // Tools: new ones, call rates, and egress from a tool that had none.
  const baseTools = new Map(frozen.tools.map((t) => [t.name, t] as const));
  const observedDestinations = new Map(observed.destinations.map((d) => [destinationKey(d), d] as const));
  for (const t of observed.tools) {
    const base = baseTools.get(t.name);
    if (base === undefined) {
      add("new-tool", "tool", t.name, [t.name], t.calls > 0 ? `${t.name} was called ${plural(t.calls, "time")}, a tool the baseline never saw` : `${t.name} was in flight during egress, a tool the baseline never saw`);
    } else if (base.perMinute.max > 0 && t.perMinute.max > tolerance * base.perMinute.max) {
      const limit = round(tolerance * base.perMinute.max);
      add("rate-exceeded", "tool", t.name, [t.name], `${t.name} was called ${t.perMinute.max} times a minute, above ${tolerance}x the baseline's highest of ${base.perMinute.max}`, { observed: t.perMinute.max, limit });
    }
    if (base !== undefined && base.destinations.length > 0) continue;
    // A connection made in company is explained when the baseline saw it in company with
    // this tool, or saw another tool in flight now make it.
    const baseReaches = (tool: string, ref: string): boolean => {
      const b = baseTools.get(tool);
      return b !== undefined && (b.destinations.includes(ref) || b.sharedDestinations.includes(ref));
    };
    const explained = (ref: string): boolean =>
      (base?.sharedDestinations.includes(ref) ?? false) || (observedDestinations.get(ref)?.tools ?? []).some((other) => other !== t.name && baseReaches(other, ref));
    const unexplained = [...t.destinations.filter((ref) => !(base?.sharedDestinations.includes(ref) ?? false)), ...t.sharedDestinations.filter((ref) => !explained(ref))].sort(byDestinationRef);
    if (unexplained.length > 0) {
      add("new-egress-from-tool", "tool", t.name, [t.name], `${t.name} connected to ${listText(unexplained)}; in the baseline it made no connections`);
    }
  }

  // DNS tunnelling: signals the baseline did not already show under the same rule.
  const baseTunnels = new Map(frozen.tunnelling.map((t) => [t.rule, new Set<string>(t.signals)] as const));
  for (const t of observed.tunnelling) {
    const known = baseTunnels.get(t.rule);
    const fresh = t.signals.filter((s) => !(known?.has(s) ?? false));
    if (fresh.length === 0) continue;
    const example = t.examples[0] !== undefined ? `, such as ${t.examples[0]}` : "";
    const what = fresh.map((s) => SIGNAL_TEXT[s]).join(", ");
    add("dns-tunnelling", "tunnelling", t.rule, t.tools, `${whoText(t.tools)} asked for names under ${t.rule} that look like DNS tunnelling (${what})${example}`);
  }

  const detail = (d: Drift): string => (d.request === undefined ? "" : `${d.request.path} ${d.request.method} ${d.request.field?.place ?? ""} ${d.request.field?.name ?? ""}`);
  return drifts.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || byText(a.code, b.code) || byText(a.subject, b.subject) || byText(detail(a), detail(b)));
}

