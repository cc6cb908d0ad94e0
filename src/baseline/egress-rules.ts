import { parseIp } from "../core/ip.js";
import { RECORD_TYPES, TLS_PORTS, type AnswerableRecordType } from "../core/policy/policy-schema.js";
import type { Baseline, BaselineDestination } from "../core/baseline/baseline-schema.js";
import { byText } from "../core/baseline/canonical.js";

/**
 * The egress allow rules a baseline's behaviour needs: each exact host with the ports it
 * was reached on, a /32 (or /128) for each IP literal, and the DNS record types asked
 * beyond A. Never a wildcard: the point of a baseline is to be exact.
 */
export interface HostAllowRule {
  readonly host: string;
  readonly ports: readonly number[];
  /** Only looked up, never connected to; the ports are the policy's default (443). */
  readonly dnsOnly: boolean;
  /** Requests were seen on a TLS port: the sidecar must terminate TLS to see them again. */
  readonly inspect?: true;
  /** The routes seen, ids as `*`; absent when no requests were seen, or not on every port. */
  readonly http?: readonly HttpRouteRule[];
  /** Why requests were seen but no `http:` routes are suggested. */
  readonly httpNote?: string;
}

export interface HttpRouteRule {
  readonly method: string;
  readonly path: string;
}

export interface CidrAllowRule {
  readonly cidr: string;
  readonly ports: readonly number[];
}

export interface EgressRules {
  readonly hosts: readonly HostAllowRule[];
  readonly cidrs: readonly CidrAllowRule[];
  /** Always starts with A, the only type answered by default. */
  readonly recordTypes: readonly AnswerableRecordType[];
  /** Types the server asked for that Hangar never answers (AAAA, MX, ...). */
  readonly unanswerable: readonly string[];
  /** Wildcards under which the server sent tunnelling-like names; no rule is suggested for them. */
  readonly tunnelling: readonly string[];
}

/** Reversed labels, so hosts of one domain sit together: api.mail.test next to smtp.mail.test. */
const domainOrder = (name: string): string => name.split(".").reverse().join(".");

export function egressRulesFor(baseline: Baseline): EgressRules {
  const hostPorts = new Map<string, Set<number>>();
  const cidrPorts = new Map<string, Set<number>>();
  for (const d of baseline.destinations) {
    const ip = parseIp(d.name);
    const target = ip === undefined ? hostPorts : cidrPorts;
    const key = ip === undefined ? d.name : `${ip.text}/${ip.version === 4 ? 32 : 128}`;
    (target.get(key) ?? target.set(key, new Set()).get(key)!).add(d.port);
  }
  const byHost = new Map<string, BaselineDestination[]>();
  for (const d of baseline.destinations) byHost.set(d.name, [...(byHost.get(d.name) ?? []), d]);
  const hosts: HostAllowRule[] = [...hostPorts].map(([host, ports]) => ({ host, ports: [...ports].sort((a, b) => a - b), dnsOnly: false, ...routesFor(byHost.get(host) ?? []) }));
  const dnsOnly = new Set(baseline.dns.map((e) => e.name).filter((name) => !hostPorts.has(name)));
  for (const host of dnsOnly) hosts.push({ host, ports: [443], dnsOnly: true });
  hosts.sort((a, b) => byText(domainOrder(a.host), domainOrder(b.host)));

  const asked = new Set(baseline.dns.map((e) => e.type));
  const answerable = new Set<string>(RECORD_TYPES);
  return {
    hosts,
    cidrs: [...cidrPorts].map(([cidr, ports]) => ({ cidr, ports: [...ports].sort((a, b) => a - b) })).sort((a, b) => byText(a.cidr, b.cidr)),
    recordTypes: RECORD_TYPES.filter((t) => t === "A" || asked.has(t)),
    unanswerable: [...asked].filter((t) => !answerable.has(t)).sort(byText),
    tunnelling: baseline.tunnelling.map((t) => t.rule).sort(byText),
  };
}

/** The policy's path glob for a path template: each placeholder is one segment, `*`. */
export function routeGlob(path: string): string | undefined {
  const glob = path.replace(/\{(n|uuid|id)\}/g, "*");
  return /^\/[\x21-\x7e]*$/.test(glob) && glob.length <= 500 && !/[?#{}]/.test(glob) ? glob : undefined;
}

/**
 * `http:` routes for one host. Only when every port of it showed requests: a rule's routes
 * apply on all its ports, and a port whose traffic was never seen as requests would break.
 */
function routesFor(destinations: readonly BaselineDestination[]): Pick<HostAllowRule, "inspect" | "http" | "httpNote"> {
  const seen = destinations.filter((d) => (d.requests?.length ?? 0) > 0);
  if (seen.length === 0) return {};
  const inspect = seen.some((d) => TLS_PORTS.has(d.port)) ? { inspect: true as const } : {};
  if (seen.length < destinations.length) {
    const opaque = destinations.filter((d) => !seen.includes(d)).map((d) => d.port);
    return { ...inspect, httpNote: `requests were seen, but not on port ${opaque.join(", ")}; no http routes are suggested` };
  }
  const routes = new Map<string, HttpRouteRule>();
  for (const r of seen.flatMap((d) => d.requests ?? [])) {
    const path = routeGlob(r.path);
    if (path === undefined || !/^[A-Z]{1,20}$/.test(r.method)) {
      return { ...inspect, httpNote: `the request ${r.method} ${r.path} cannot be written as an http route; no http routes are suggested` };
    }
    routes.set(`${r.method} ${path}`, { method: r.method, path });
  }
  return { ...inspect, http: [...routes.values()].sort((a, b) => byText(a.path, b.path) || byText(a.method, b.method)) };
}
