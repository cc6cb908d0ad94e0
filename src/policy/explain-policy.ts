import { policyWarnings, type CompiledPolicy, type HostRule } from "../core/policy/compiled-policy.js";
import { formatHostPattern, parseHostPattern } from "../core/names.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import { formatPath } from "./format-issues.js";

/**
 * What a policy means once compiled: every effective rule with a sentence saying what it
 * allows. Pure. Rules show names as the sidecar compares them (lowercase, punycode, no
 * trailing dot), with the spellings from the file alongside. Secret values never appear.
 */
export interface PolicyExplanation {
  readonly name: string;
  readonly description?: string;
  readonly server: ServerExplanation;
  readonly egress: EgressExplanation;
  readonly tools: ToolsExplanation;
  readonly baseline: BaselineExplanation;
  /** What holds whatever the policy says. */
  readonly invariants: readonly string[];
  readonly warnings: readonly { readonly path: string; readonly message: string }[];
}

export type ServerSource =
  | { readonly kind: "npm"; readonly package: string; readonly version: string; readonly integrity?: string }
  | { readonly kind: "image"; readonly ref: string; readonly digest?: string }
  | { readonly kind: "build"; readonly context: string; readonly dockerfile: string };

export interface ServerExplanation {
  readonly source: ServerSource;
  readonly sourceText: string;
  readonly command?: readonly string[];
  readonly args: readonly string[];
  /** Names of plain env values; their values stay in the policy file. */
  readonly env: readonly string[];
  readonly secrets: readonly string[];
  readonly mounts: readonly { readonly source: string; readonly target: string; readonly readOnly: boolean }[];
  readonly resources: { readonly memory: string; readonly cpus: number; readonly pids: number };
}

export interface HostRuleExplanation {
  readonly rule: string;
  readonly kind: "exact" | "wildcard";
  /** The allow entries as written in the file that produced this rule. */
  readonly written: readonly string[];
  readonly ports: readonly number[];
  /** Wildcards only: whether the bare suffix (the apex) has a rule of its own. */
  readonly apexCovered?: boolean;
  /** The sidecar terminates TLS here and sees every request. */
  readonly inspect: boolean;
  /** Only these requests (`METHOD /path-glob`); absent: any request. */
  readonly routes?: readonly string[];
  readonly meaning: string;
}

export interface CidrRuleExplanation {
  readonly cidr: string;
  readonly version: 4 | 6;
  readonly ports: readonly number[];
  readonly meaning: string;
}

export interface EgressExplanation {
  readonly mode: Mode;
  readonly modeMeaning: string;
  readonly summary: string;
  readonly hosts: readonly HostRuleExplanation[];
  readonly cidrs: readonly CidrRuleExplanation[];
  readonly dns: { readonly answered: readonly string[]; readonly neverAnswered: readonly ["AAAA"]; readonly meaning: string };
  readonly capture: { readonly enabled: boolean; readonly ports: readonly number[]; readonly meaning: string };
  /** Ports the sidecar listens on for traffic that ignores HTTP_PROXY. */
  readonly transparentPorts: readonly number[];
  /** How traffic that carries no name (no TLS SNI, no HTTP Host) is routed, per declared port. */
  readonly namelessPorts: readonly { readonly port: number; readonly routesTo?: string; readonly meaning: string }[];
}

export interface ToolsExplanation {
  readonly allow: readonly string[] | "all";
  readonly deny: readonly string[];
  readonly rateLimitPerMinute?: number;
  readonly meaning: string;
}

export interface BaselineExplanation {
  readonly file?: string;
  readonly rateTolerance: number;
  readonly meaning: string;
}

export const INVARIANTS: readonly string[] = [
  "The sidecar is the only way out: no route to the host, the bridge gateway, other sandboxes or outside DNS resolvers.",
  "The sidecar dials only addresses it resolved itself, and blocks a CONNECT whose TLS SNI names another host.",
  "A declared name that resolves to a private, loopback, link-local or metadata address is refused unless a CIDR rule covers that address.",
  "There is no IPv6 inside the sandbox.",
];

export function explainPolicy(compiled: CompiledPolicy): PolicyExplanation {
  const policy = compiled.source;
  return {
    name: policy.name,
    ...(policy.description !== undefined ? { description: policy.description } : {}),
    server: explainServer(policy),
    egress: explainEgress(compiled),
    tools: explainTools(policy),
    baseline: explainBaseline(policy),
    invariants: INVARIANTS,
    warnings: policyWarnings(compiled).map((w) => ({ path: formatPath(w.path), message: w.message })),
  };
}

export const portsText = (ports: Iterable<number>): string => {
  const list = [...ports].sort((a, b) => a - b);
  return list.length === 1 ? `port ${list[0]}` : `ports ${list.join(", ")}`;
};

function explainServer(policy: Policy): ServerExplanation {
  const s = policy.server;
  let source: ServerSource;
  let sourceText: string;
  if (s.npm !== undefined) {
    source = { kind: "npm", package: s.npm.package, version: s.npm.version, ...(s.npm.integrity ? { integrity: s.npm.integrity } : {}) };
    sourceText = `npm package ${s.npm.package}, exactly version ${s.npm.version}, ${s.npm.integrity ? `tarball pinned by integrity ${s.npm.integrity}` : "not pinned by integrity"}`;
  } else if (s.image !== undefined) {
    source = { kind: "image", ref: s.image.ref, ...(s.image.digest ? { digest: s.image.digest } : {}) };
    sourceText = `container image ${s.image.ref}, ${s.image.digest ? `pinned by digest ${s.image.digest}` : "not pinned by digest (the tag may move)"}`;
  } else {
    const build = s.build ?? { context: ".", dockerfile: "Dockerfile" };
    source = { kind: "build", context: build.context, dockerfile: build.dockerfile };
    sourceText = `image built locally from ${build.context} with ${build.dockerfile}`;
  }
  return {
    source,
    sourceText,
    ...(s.command !== undefined ? { command: s.command } : {}),
    args: s.args,
    env: Object.keys(s.env).sort(),
    secrets: s.secrets,
    mounts: s.mounts.map((m) => ({ source: m.source, target: m.target, readOnly: m.readOnly })),
    resources: { ...s.resources },
  };
}

const MODE_MEANING: Readonly<Record<Mode, string>> = {
  enforcing: "anything the rules below do not declare is blocked, and so is drift from a frozen baseline",
  observing:
    "traffic flows; anything enforcing mode would block is recorded as would-block (the audit and rollout mode). " +
    "One exception, because a DNS lookup itself carries the name out: a name the rules refuse (undeclared, or looking like DNS tunnelling) " +
    "is answered NXDOMAIN and never looked up upstream, and a record type they do not list gets no answer; both are recorded as would-block. " +
    "A declared name that only drifts from a frozen baseline is still looked up",
};

function writtenHosts(policy: Policy, rule: HostRule): string[] {
  return policy.egress.allow.flatMap((entry) => {
    if (entry.host === undefined) return [];
    const pattern = parseHostPattern(entry.host);
    return pattern !== undefined && formatHostPattern(pattern) === rule.text ? [entry.host] : [];
  });
}

/** What a rule's `inspect` and `http` entries mean, in words; empty for a rule with neither. */
function requestsText(rule: HostRule): string {
  const routes = rule.routes?.map((r) => r.text);
  const inspect = rule.inspect
    ? "; TLS is terminated by the sidecar with this sandbox's own CA (the server trusts it; clients are offered http/1.1), every request is decided (its Host must be the TLS name), and TLS to the upstream is re-made with full verification"
    : "";
  if (routes === undefined) return inspect;
  return `${inspect}; only these requests: ${routes.join(", ")} (method exact or *, path glob without the query: * is one segment, ** any number); any other request is refused, and so is a connection whose requests the sidecar cannot see`;
}

function explainHost(compiled: CompiledPolicy, rule: HostRule): HostRuleExplanation {
  const ports = [...rule.ports].sort((a, b) => a - b);
  const written = writtenHosts(compiled.source, rule);
  const requests = { inspect: rule.inspect, ...(rule.routes !== undefined ? { routes: rule.routes.map((r) => r.text) } : {}) };
  if (rule.pattern.kind === "exact") {
    return { rule: rule.text, kind: "exact", written, ports, ...requests, meaning: `${rule.text} on ${portsText(ports)}: this name only, not its subdomains${requestsText(rule)}` };
  }
  const suffix = rule.pattern.suffix;
  const apexCovered = compiled.exactHosts.has(suffix);
  const apex = apexCovered ? `${suffix} itself has its own rule` : `${suffix} itself is NOT covered (add an exact rule for it if needed)`;
  return {
    rule: rule.text,
    kind: "wildcard",
    written,
    ports,
    apexCovered,
    ...requests,
    meaning: `${rule.text} on ${portsText(ports)}: any name under ${suffix} (such as api.${suffix} or a.b.${suffix}); ${apex}; long or random-looking labels under it are treated as DNS tunnelling${requestsText(rule)}`,
  };
}

function explainEgress(compiled: CompiledPolicy): EgressExplanation {
  const hosts = [...compiled.exactHosts.values(), ...compiled.wildcardHosts].sort((a, b) => a.index - b.index).map((r) => explainHost(compiled, r));
  const cidrs = compiled.cidrRules.map((r): CidrRuleExplanation => {
    const ports = [...r.ports].sort((a, b) => a - b);
    return {
      cidr: r.text,
      version: r.range.version,
      ports,
      meaning: `${r.text} on ${portsText(ports)}: IPv${r.range.version} addresses in this range, reached through the explicit proxy (CONNECT to the IP); declared names may also resolve into it`,
    };
  });
  const answered = ["A", ...[...compiled.recordTypes].filter((t) => t !== "A").sort()];
  const capture = compiled.capture;
  const dnsMeaning = capture.enabled
    ? "every name resolves to the sidecar's own address so each attempt can be recorded; nothing is forwarded. AAAA is never answered."
    : `declared names get ${answered.join(", ")} answers (A records point at the sidecar itself, so connections come to it); AAAA is never answered, since there is no IPv6 in the sandbox; ` +
      (compiled.mode === "observing"
        ? "every other name gets NXDOMAIN, is recorded as would-block and is never looked up upstream; neither is a name that looks like DNS tunnelling, nor a record type not listed here."
        : "every other name gets NXDOMAIN, is recorded, and is never looked up upstream.");
  const captureMeaning = capture.enabled
    ? `quarantine: every connection on ${portsText(capture.ports)} is recorded with its SNI or Host, and nothing leaves the sandbox`
    : "off; traffic the rules allow is forwarded";

  const ruleCount = hosts.length + cidrs.length;
  const summary = capture.enabled
    ? "capture (quarantine): nothing leaves; every attempt is recorded"
    : ruleCount === 0
      ? "no egress: every outbound connection and every DNS lookup is refused"
      : `${ruleCount} allow rule${ruleCount === 1 ? "" : "s"}; everything else is ${compiled.mode === "enforcing" ? "blocked" : "recorded as would-block (undeclared names still get NXDOMAIN, never looked up)"}`;

  const namelessPorts = [...compiled.portOwners.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, owner]) => {
      return owner === "ambiguous"
        ? { port, meaning: `port ${port}: several names (or a wildcard) declare it, so traffic without a name is refused` }
        : { port, routesTo: owner, meaning: `port ${port}: traffic without a name goes to ${owner}` };
    });

  return {
    mode: compiled.mode,
    modeMeaning: MODE_MEANING[compiled.mode],
    summary,
    hosts,
    cidrs,
    dns: { answered: capture.enabled ? [] : answered, neverAnswered: ["AAAA"], meaning: dnsMeaning },
    capture: { enabled: capture.enabled, ports: capture.ports, meaning: captureMeaning },
    transparentPorts: compiled.transparentPorts,
    namelessPorts,
  };
}

function explainTools(policy: Policy): ToolsExplanation {
  const { allow, deny, rateLimit } = policy.tools;
  const parts: string[] = [];
  if (allow === undefined) parts.push("every tool the server offers is callable");
  else if (allow.length === 0) parts.push("no tool is callable");
  else parts.push(`only tools matching ${allow.join(", ")} are callable`);
  if (deny.length > 0) parts.push(`tools matching ${deny.join(", ")} are refused (deny wins over allow)`);
  if (rateLimit !== undefined) parts.push(`at most ${rateLimit.perMinute} tool calls per minute`);
  return {
    allow: allow ?? "all",
    deny,
    ...(rateLimit !== undefined ? { rateLimitPerMinute: rateLimit.perMinute } : {}),
    meaning: parts.join("; "),
  };
}

function explainBaseline(policy: Policy): BaselineExplanation {
  const { file, rateTolerance } = policy.baseline;
  const drift = `drift (a new destination under a wildcard, a new port, or a connection rate above ${rateTolerance}x the baseline's highest) is ${policy.egress.mode === "enforcing" ? "blocked" : "recorded as would-block"}`;
  const meaning =
    file === undefined
      ? `no frozen baseline yet: only the declared rules apply while the sidecar records what the server does; once a baseline is learned and frozen, ${drift}`
      : `frozen baseline ${file}: ${drift}`;
  return { ...(file !== undefined ? { file } : {}), rateTolerance, meaning };
}
