import { formatHostPattern, hostPatternMatches, parseHostPattern, type HostPattern } from "../names.js";
import { parseIpRange, rangeContains, type IpRange, type ParsedIp } from "../ip.js";
import type { AnswerableRecordType, Mode, Policy } from "./policy-schema.js";

/** A policy turned into the lookup structures the sidecar's hot paths need. Built once per (re)load. */
export interface HostRule {
  readonly index: number;
  readonly pattern: HostPattern;
  readonly ports: ReadonlySet<number>;
  readonly text: string;
  /** The sidecar terminates TLS for this destination and decides every request. */
  readonly inspect: boolean;
  /** Only these requests; undefined allows every request. */
  readonly routes?: readonly HttpRoute[];
}

/** One `http:` entry: method (or "*") and a path glob compiled to an anchored pattern. */
export interface HttpRoute {
  readonly method: string;
  readonly path: RegExp;
  readonly text: string;
}

export interface CidrRule {
  readonly index: number;
  readonly range: IpRange;
  readonly ports: ReadonlySet<number>;
  readonly text: string;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly mode: Mode;
  readonly capture: { readonly enabled: boolean; readonly ports: readonly number[] };
  readonly exactHosts: ReadonlyMap<string, HostRule>;
  readonly wildcardHosts: readonly HostRule[];
  readonly cidrRules: readonly CidrRule[];
  readonly recordTypes: ReadonlySet<AnswerableRecordType>;
  /** Every port a host rule declares: the sidecar opens a transparent listener on each. */
  readonly transparentPorts: readonly number[];
  /** For protocols that carry no name: the single exact host declaring a port, or "ambiguous". */
  readonly portOwners: ReadonlyMap<number, string | "ambiguous">;
  readonly source: Policy;
}

/** Ports whose traffic normally names its destination (HTTP Host, TLS SNI). */
export const NAMED_PROTOCOL_PORTS: ReadonlySet<number> = new Set([80, 443, 8080, 8443]);

export function compilePolicy(policy: Policy): CompiledPolicy {
  const exactHosts = new Map<string, HostRule>();
  const wildcardHosts = new Map<string, HostRule>();
  const cidrRules: CidrRule[] = [];
  const owners = new Map<number, Set<string>>();

  policy.egress.allow.forEach((entry, index) => {
    const ports = new Set(entry.ports);
    if (entry.host !== undefined) {
      const pattern = parseHostPattern(entry.host);
      if (pattern === undefined) throw new Error(`compilePolicy: unvalidated host ${entry.host}`);
      const existing = pattern.kind === "exact" ? exactHosts.get(pattern.name) : wildcardHosts.get(pattern.suffix);
      // Two entries for one name or one wildcard merge: their ports, and what they allow (an
      // entry without http routes allows every request, so the merge does too).
      const merged = existing === undefined ? ports : new Set([...existing.ports, ...ports]);
      const own = entry.http?.map(compileRoute);
      const routes = existing === undefined ? own : existing.routes === undefined || own === undefined ? undefined : [...existing.routes, ...own];
      const rule: HostRule = {
        index: existing?.index ?? index,
        pattern,
        ports: merged,
        text: formatHostPattern(pattern),
        inspect: entry.inspect === true || existing?.inspect === true,
        ...(routes !== undefined ? { routes } : {}),
      };
      if (pattern.kind === "exact") {
        exactHosts.set(pattern.name, rule);
        for (const p of ports) (owners.get(p) ?? owners.set(p, new Set()).get(p)!).add(pattern.name);
      } else {
        wildcardHosts.set(pattern.suffix, rule);
        for (const p of ports) (owners.get(p) ?? owners.set(p, new Set()).get(p)!).add(rule.text);
      }
    } else if (entry.cidr !== undefined) {
      const range = parseIpRange(entry.cidr);
      if (range === undefined) throw new Error(`compilePolicy: unvalidated cidr ${entry.cidr}`);
      cidrRules.push({ index, range, ports, text: range.cidr });
    }
  });

  const portOwners = new Map<number, string | "ambiguous">();
  for (const [p, names] of owners) {
    const only = names.size === 1 ? [...names][0]! : undefined;
    portOwners.set(p, only !== undefined && !only.startsWith("*.") ? only : "ambiguous");
  }

  const capture = policy.egress.capture;
  const captureCfg =
    capture === false
      ? { enabled: false, ports: [] as number[] }
      : { enabled: true, ports: capture === true ? [80, 443] : capture.ports };

  const transparentPorts = [...new Set([...owners.keys(), ...captureCfg.ports])].sort((a, b) => a - b);

  return {
    name: policy.name,
    mode: policy.egress.mode,
    capture: captureCfg,
    exactHosts,
    wildcardHosts: [...wildcardHosts.values()],
    cidrRules,
    recordTypes: new Set(policy.egress.dns.recordTypes),
    transparentPorts,
    portOwners,
    source: policy,
  };
}

/** The host rule a normalised name falls under: an exact rule wins over any wildcard. */
export function findHostRule(policy: CompiledPolicy, name: string): HostRule | undefined {
  const exact = policy.exactHosts.get(name);
  if (exact !== undefined) return exact;
  let best: HostRule | undefined;
  for (const rule of policy.wildcardHosts) {
    if (!hostPatternMatches(rule.pattern, name)) continue;
    // The most specific wildcard decides (longest suffix).
    if (best === undefined || (rule.pattern.kind === "wildcard" && best.pattern.kind === "wildcard" && rule.pattern.suffix.length > best.pattern.suffix.length)) {
      best = rule;
    }
  }
  return best;
}

/** `*` is one path segment (or part of one), `**` any number of segments. */
export function compileRoute(route: { readonly method: string; readonly path: string }): HttpRoute {
  let source = "";
  for (let i = 0; i < route.path.length; i++) {
    const c = route.path[i]!;
    if (c === "*" && route.path[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (c === "*") {
      source += "[^/]*";
    } else {
      source += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
    }
  }
  return { method: route.method, path: new RegExp(`^${source}$`), text: `${route.method} ${route.path}` };
}

/**
 * Whether a request matches one of `routes`. The path is matched as sent, without its query;
 * a path that a server could read differently from us (dot segments, encoded slashes, dots or
 * backslashes) matches nothing, so a glob cannot be walked around.
 */
export function matchRoute(routes: readonly HttpRoute[], method: string, target: string): HttpRoute | undefined {
  const q = target.search(/[?#]/);
  const path = q === -1 ? target : target.slice(0, q);
  if (!path.startsWith("/") || AMBIGUOUS_PATH.test(path)) return undefined;
  return routes.find((r) => (r.method === "*" || r.method === method) && r.path.test(path));
}

const AMBIGUOUS_PATH = /(^|\/)\.\.?(\/|$)|%2[ef]|%5c|\\/i;

export function findCidrRule(policy: CompiledPolicy, ip: ParsedIp, port?: number): CidrRule | undefined {
  let anyPort: CidrRule | undefined;
  for (const rule of policy.cidrRules) {
    if (!rangeContains(rule.range, ip)) continue;
    if (port === undefined || rule.ports.has(port)) return rule;
    anyPort ??= rule;
  }
  return port === undefined ? anyPort : undefined;
}

/** Lint-level warnings: valid policies that will not behave as the author may expect. */
export interface PolicyWarning {
  readonly path: (string | number)[];
  readonly message: string;
}

export function policyWarnings(policy: CompiledPolicy): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  for (const [p, owner] of policy.portOwners) {
    if (owner !== "ambiguous" || NAMED_PROTOCOL_PORTS.has(p)) continue;
    const idx = policy.source.egress.allow.findIndex((e) => e.host !== undefined && e.ports.includes(p));
    warnings.push({
      path: ["egress", "allow", Math.max(idx, 0), "ports"],
      message: `port ${p} is ambiguous: several hosts (or a wildcard) declare it, so traffic on it that carries no name (no TLS SNI, no HTTP Host) cannot be routed and will be refused`,
    });
  }
  if (policy.capture.enabled && (policy.exactHosts.size > 0 || policy.wildcardHosts.length > 0 || policy.cidrRules.length > 0)) {
    warnings.push({ path: ["egress", "capture"], message: "capture is on, so nothing leaves: the allow rules are reported but never used" });
  }
  return warnings;
}
