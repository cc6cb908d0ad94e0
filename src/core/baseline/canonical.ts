import type { Baseline, BaselineDestination, BaselineDnsEntry, BaselineRequest, BaselineTool, BaselineTunnelling } from "./baseline-schema.js";

/**
 * The one on-disk form of a baseline: keys in a fixed order, every array sorted, a
 * trailing newline. Same baseline, same bytes, so a git diff shows behaviour changes only.
 */
export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `name:port` references, by name and then by numeric port. */
export function byDestinationRef(a: string, b: string): number {
  const [an, ap] = splitRef(a);
  const [bn, bp] = splitRef(b);
  return byText(an, bn) || ap - bp;
}

export function splitRef(ref: string): [string, number] {
  const at = ref.lastIndexOf(":");
  return [ref.slice(0, at), Number(ref.slice(at + 1))];
}

const sorted = (xs: readonly string[]): string[] => [...new Set(xs)].sort(byText);

function request(r: BaselineRequest): BaselineRequest {
  return {
    method: r.method,
    path: r.path,
    queryKeys: sorted(r.queryKeys),
    bodyFields: sorted(r.bodyFields),
    headerNames: sorted(r.headerNames),
    bodies: [...new Set(r.bodies)].sort(byText),
    ...(r.credentials !== undefined && r.credentials.length > 0 ? { credentials: sorted(r.credentials) } : {}),
    count: r.count,
    firstSeen: r.firstSeen,
    lastSeen: r.lastSeen,
    tools: sorted(r.tools),
  };
}

/** Routes by path, then method, so one resource's methods sit together. */
const byRoute = (a: BaselineRequest, b: BaselineRequest): number => byText(a.path, b.path) || byText(a.method, b.method);

function destination(d: BaselineDestination): BaselineDestination {
  const requests = d.requests?.map(request).sort(byRoute) ?? [];
  return {
    name: d.name,
    port: d.port,
    protocols: [...new Set(d.protocols)].sort(byText),
    count: d.count,
    firstSeen: d.firstSeen,
    lastSeen: d.lastSeen,
    bytesUp: d.bytesUp,
    bytesDown: d.bytesDown,
    perMinute: { max: d.perMinute.max, p95: d.perMinute.p95 },
    tools: sorted(d.tools),
    // Left out when empty, so a baseline without request shapes keeps its version 1 bytes.
    ...(requests.length > 0 ? { requests } : {}),
  };
}

function dnsEntry(d: BaselineDnsEntry): BaselineDnsEntry {
  return { name: d.name, type: d.type, count: d.count, firstSeen: d.firstSeen, lastSeen: d.lastSeen, tools: sorted(d.tools) };
}

function tool(t: BaselineTool): BaselineTool {
  return {
    name: t.name,
    calls: t.calls,
    firstSeen: t.firstSeen,
    lastSeen: t.lastSeen,
    perMinute: { mean: t.perMinute.mean, p95: t.perMinute.p95, max: t.perMinute.max },
    destinations: [...new Set(t.destinations)].sort(byDestinationRef),
    sharedDestinations: [...new Set(t.sharedDestinations)].sort(byDestinationRef),
  };
}

function tunnelling(t: BaselineTunnelling): BaselineTunnelling {
  return {
    rule: t.rule,
    signals: [...new Set(t.signals)].sort(byText),
    count: t.count,
    names: t.names,
    examples: sorted(t.examples),
    firstSeen: t.firstSeen,
    lastSeen: t.lastSeen,
    tools: sorted(t.tools),
  };
}

export function canonicalBaseline(b: Baseline): Baseline {
  const destinations = b.destinations.map(destination).sort((x, y) => byText(x.name, y.name) || x.port - y.port);
  return {
    // The lowest version that can hold the content: old readers keep working until shapes appear.
    version: destinations.some((d) => d.requests !== undefined) ? 2 : 1,
    server: b.server,
    status: b.status,
    ...(b.frozenAt !== undefined ? { frozenAt: b.frozenAt } : {}),
    rateTolerance: b.rateTolerance,
    observed: {
      ...(b.observed.from !== undefined ? { from: b.observed.from } : {}),
      ...(b.observed.to !== undefined ? { to: b.observed.to } : {}),
      minutes: b.observed.minutes,
      events: b.observed.events,
      toolCalls: b.observed.toolCalls,
    },
    destinations,
    dns: b.dns.map(dnsEntry).sort((x, y) => byText(x.name, y.name) || byText(x.type, y.type)),
    tools: b.tools.map(tool).sort((x, y) => byText(x.name, y.name)),
    tunnelling: b.tunnelling.map(tunnelling).sort((x, y) => byText(x.rule, y.rule)),
  };
}

export function serialiseBaseline(b: Baseline): string {
  return `${JSON.stringify(canonicalBaseline(b), null, 2)}\n`;
}
