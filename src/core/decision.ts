import { labelsUnder, normaliseHostName } from "./names.js";
import { classifyIp, parseIp, rangeContains, type IpClass, type IpRange, type ParsedIp } from "./ip.js";
import { findCidrRule, findHostRule, matchRoute, type CompiledPolicy } from "./policy/compiled-policy.js";
import type { Mode } from "./policy/policy-schema.js";
import { DEFAULT_TUNNELLING_LIMITS, tunnellingSignals, type TunnellingLimits } from "./tunnelling.js";
import { baselineSawCredentials, checkRequestShape, requestDriftReason, type RequestShapeView } from "./baseline/request-drift.js";
import type { RequestShape } from "./request-shape.js";
import { describeLeak, nameLeaks, type SecretLeak } from "./secrets/request-secrets.js";
import type { SecretWatch } from "./secrets/secret-watch.js";

/**
 * The one decision function. Both sidecar paths (DNS and connections, transparent and
 * explicit) call it, so a rule can never hold on one path and not the other. Pure: no I/O.
 */
export type VerdictKind = "allow" | "flag" | "block" | "would-block";
export type Protocol = "dns" | "tls" | "http" | "connect" | "tcp" | "udp";
export type Stage = "dns" | "connect";

export type ReasonCode =
  // why something is allowed
  | "declared-host"
  | "declared-wildcard"
  | "declared-cidr"
  // policy violations (blocked in ENFORCING, would-block in OBSERVING)
  | "undeclared-host"
  | "undeclared-port"
  | "undeclared-ip"
  | "undeclared-record-type"
  | "undeclared-route"
  | "requests-not-visible"
  | "no-name"
  | "ambiguous-port"
  // baseline drift (only with a frozen baseline)
  | "drift-new-destination"
  | "drift-new-port"
  | "drift-new-dns-name"
  | "drift-rate"
  | "drift-new-http-route"
  | "drift-new-request-field"
  | "drift-body-not-inspected"
  // a well-known credential shape in a request to a destination not declared for it
  | "credential-pattern"
  // tunnelling heuristics
  | "tunnel-long-label"
  | "tunnel-entropy"
  | "tunnel-unique-rate"
  | "tunnel-bits"
  | "tunnel-bits-rate"
  | "tunnel-budget"
  // a secret (its sentinel, or an injected value) outside its declared header and host: hard;
  // a watched value away from its own host: a violation
  | "secret-leak"
  // hard invariants (blocked in every mode)
  | "invalid-name"
  | "ipv6-disabled"
  | "sni-mismatch"
  | "sni-missing"
  | "upstream-certificate"
  | "client-rejected-ca"
  | "tls-handshake-failed"
  | "host-mismatch"
  | `resolution-${Exclude<IpClass, "public">}`
  | `destination-${Exclude<IpClass, "public">}`
  | "capture"
  | "malformed-client-hello"
  | "malformed-request"
  | "header-too-large"
  | "peek-timeout"
  // the sidecar's own bounds: a connection refused or cut to keep the process up
  | "connection-cap"
  | "memory-budget"
  | "idle-timeout"
  | "upstream-unresolvable";

export interface Verdict {
  readonly verdict: VerdictKind;
  readonly reasons: readonly ReasonCode[];
  /** The policy rule that matched, as written (e.g. "*.amazonaws.com" or "10.0.0.0/8"). */
  readonly rule?: string;
  /** The matched rule says `inspect: true`: the sidecar terminates TLS and decides each request. */
  readonly inspect?: true;
  /** Secrets found where they do not belong (`POSTMARK_TOKEN sentinel in body`): names and places, never values. */
  readonly leaks?: readonly string[];
  /** Credential shapes found (`aws-access-key`), for `credential-pattern`. */
  readonly credentials?: readonly string[];
}

export interface Attempt {
  readonly stage: Stage;
  readonly protocol: Protocol;
  /** The observed name (DNS question, SNI, Host or CONNECT authority); raw, normalised here. */
  readonly name?: string;
  /** An IP literal destination (CONNECT to an IP, or a Host header that is an IP). */
  readonly ip?: string;
  readonly port?: number;
  /** Addresses the sidecar itself resolved for `name`. */
  readonly resolvedIps?: readonly string[];
  readonly recordType?: string;
  /** CONNECT authority name differs from the SNI inside the tunnel. */
  readonly sniMismatch?: boolean;
  /** TLS without SNI inside a tunnel whose authority is a name: nothing to hold the name to. */
  readonly sniMissing?: boolean;
  /** An HTTP request whose Host and URI (or tunnel authority) name different hosts. */
  readonly hostMismatch?: boolean;
  /** One HTTP request the sidecar sees: its method and request target (path and query). */
  readonly method?: string;
  readonly target?: string;
  /** A connection whose requests the sidecar will not see (TLS it does not terminate, or opaque bytes). */
  readonly opaque?: boolean;
  /** One request's shape (method, path template, field names; never values), for request drift. */
  readonly shape?: RequestShape;
  /** Distinct subdomains under the matched wildcard in the last minute (from the resolver). */
  readonly uniqueSubdomainsPerMinute?: number;
  /** The summed `nameBits` of those distinct subdomains, this name's included. */
  readonly subdomainBitsPerMinute?: number;
  /** Distinct names under the matched wildcard looked up upstream in the budget window, this one included if it is new. */
  readonly upstreamLookups?: number;
  /** Connections per minute to this destination (from the sidecar), for rate drift. */
  readonly connectionsPerMinute?: number;
  /** Secrets the request carries where they do not belong (core/secrets: checkRequestSecrets). */
  readonly secretLeaks?: readonly SecretLeak[];
  /** Credential shapes in the request that its destination is not declared for. */
  readonly credentials?: readonly string[];
}

/** The part of a frozen baseline the decision needs; the baseline module builds it. */
export interface BaselineView {
  readonly destinations: ReadonlySet<string>; // `${name}:${port}`
  readonly names: ReadonlySet<string>; // names seen in destinations
  readonly dnsNames: ReadonlySet<string>;
  readonly maxConnectionsPerMinute?: ReadonlyMap<string, number>; // by `${name}:${port}`
  readonly rateTolerance: number;
  /** Request shapes per destination; drift is judged only where the baseline saw requests. */
  readonly requests?: RequestShapeView;
}

export interface DecisionContext {
  readonly policy: CompiledPolicy;
  readonly mode: Mode;
  readonly baseline?: BaselineView;
  /** Runtime `trustedUpstreamRanges`: private answers the operator vouches for. */
  readonly trustedRanges?: readonly IpRange[];
  readonly tunnelling?: TunnellingLimits;
  /** The sandbox's secrets: a name (DNS, SNI, Host, CONNECT) carrying one is a leak on every path. */
  readonly secrets?: SecretWatch;
  /** False: requests are not searched for credential shapes (a measurement switch; default on). */
  readonly credentialScan?: boolean;
}

const ANSWERABLE_EXTRA = new Set(["TXT", "HTTPS", "SVCB"]);

export function decide(ctx: DecisionContext, attempt: Attempt): Verdict {
  const hard: ReasonCode[] = [];
  const violations: ReasonCode[] = [];
  const weak: ReasonCode[] = [];
  const allowed: ReasonCode[] = [];
  let rule: string | undefined;
  let inspect = false;
  const { policy } = ctx;

  const vet = (ip: ParsedIp, prefix: "resolution" | "destination"): void => {
    const cls = classifyIp(ip);
    if (cls === "public") return;
    if (findCidrRule(policy, ip, attempt.port) !== undefined) return;
    if (ctx.trustedRanges?.some((r) => rangeContains(r, ip))) return;
    hard.push(`${prefix}-${cls}`);
  };

  // Adapters spell record types as they like ("aaaa" is still AAAA).
  const recordType = attempt.recordType?.toUpperCase();
  if (recordType === "AAAA") hard.push("ipv6-disabled");
  if (attempt.sniMismatch === true) hard.push("sni-mismatch");
  if (attempt.sniMissing === true) hard.push("sni-missing");
  if (attempt.hostMismatch === true) hard.push("host-mismatch");

  const leaks = attempt.name === undefined || ctx.secrets === undefined ? [] : nameLeaks(ctx.secrets, attempt.name);
  if (attempt.secretLeaks !== undefined) leaks.push(...attempt.secretLeaks);
  if (leaks.some((l) => l.hard)) hard.push("secret-leak");
  else if (leaks.length > 0) violations.push("secret-leak");
  const credentials = attempt.credentials ?? [];

  let name: string | undefined;
  if (attempt.name !== undefined) {
    name = normaliseHostName(attempt.name);
    if (name === undefined && parseIp(attempt.name) === undefined) hard.push("invalid-name");
  }
  // A credential shape is expected only where the frozen baseline saw this route carry it.
  const expected =
    credentials.length > 0 &&
    ctx.baseline?.requests !== undefined &&
    name !== undefined &&
    attempt.port !== undefined &&
    attempt.shape !== undefined &&
    baselineSawCredentials(ctx.baseline.requests, `${name}:${attempt.port}`, attempt.shape, credentials);
  if (credentials.length > 0 && !expected) violations.push("credential-pattern");
  const literal = parseIp(attempt.ip ?? (name === undefined ? (attempt.name ?? "") : ""));

  if (attempt.ip !== undefined && literal === undefined) {
    // The destination is an address nobody can read: never fall back to judging the name.
    hard.push("invalid-name");
  } else if (literal !== undefined) {
    if (literal.version === 6) hard.push("ipv6-disabled");
    vet(literal, "destination");
    const cidr = findCidrRule(policy, literal, attempt.port);
    if (cidr !== undefined) {
      allowed.push("declared-cidr");
      rule = cidr.text;
    } else {
      violations.push("undeclared-ip");
    }
  } else if (name !== undefined) {
    const hostRule = findHostRule(policy, name);
    if (hostRule === undefined) {
      violations.push("undeclared-host");
    } else {
      rule = hostRule.text;
      allowed.push(hostRule.pattern.kind === "exact" ? "declared-host" : "declared-wildcard");
      if (attempt.stage === "connect" && attempt.port !== undefined && !hostRule.ports.has(attempt.port)) {
        violations.push("undeclared-port");
      }
      if (hostRule.inspect) inspect = true;
      if (hostRule.routes !== undefined) {
        // A rule that lists requests must see them: a request outside the list, or a connection
        // whose requests stay hidden, is a violation.
        if (attempt.method !== undefined && matchRoute(hostRule.routes, attempt.method, attempt.target ?? "") === undefined) violations.push("undeclared-route");
        if (attempt.opaque === true && !hostRule.inspect) violations.push("requests-not-visible");
      }
      if (attempt.stage === "dns" && recordType !== undefined && recordType !== "A" && recordType !== "AAAA") {
        const declared = ANSWERABLE_EXTRA.has(recordType) && policy.recordTypes.has(recordType as "TXT");
        if (!declared) violations.push("undeclared-record-type");
      }
      const signals = tunnellingSignals(labelsUnder(hostRule.pattern, name), attempt, ctx.tunnelling ?? DEFAULT_TUNNELLING_LIMITS);
      violations.push(...signals.strong);
      weak.push(...signals.weak);
    }
    for (const raw of attempt.resolvedIps ?? []) {
      const ip = parseIp(raw);
      if (ip === undefined) hard.push("upstream-unresolvable");
      else vet(ip, "resolution");
    }
  } else {
    // A DNS question without a name is as undecidable as a connection without one.
    violations.push("no-name");
  }

  const base = ctx.baseline;
  if (base !== undefined && name !== undefined && violations.length === 0 && hard.length === 0) {
    if (attempt.stage === "dns") {
      if (!base.dnsNames.has(name)) violations.push("drift-new-dns-name");
    } else if (attempt.port !== undefined) {
      const key = `${name}:${attempt.port}`;
      if (!base.destinations.has(key)) violations.push(base.names.has(name) ? "drift-new-port" : "drift-new-destination");
      const max = base.maxConnectionsPerMinute?.get(key);
      if (max !== undefined && attempt.connectionsPerMinute !== undefined && attempt.connectionsPerMinute > max * base.rateTolerance) {
        violations.push("drift-rate");
      }
      if (attempt.shape !== undefined && base.requests !== undefined) {
        for (const finding of checkRequestShape(base.requests, key, attempt.shape)) violations.push(requestDriftReason(finding.code));
      }
    }
  }

  const found = leaks.length === 0 && credentials.length === 0 ? {} : { ...(leaks.length > 0 ? { leaks: unique(leaks.map(describeLeak)) } : {}), ...(credentials.length > 0 ? { credentials } : {}) };
  if (policy.capture.enabled) return { verdict: "block", reasons: unique(["capture", ...hard, ...violations, ...weak]), ...(rule ? { rule } : {}), ...found };
  const withRule = (v: Verdict): Verdict => {
    // Spelled out rather than `{ ...v, rule }`: V8 (Node 20) builds a literal that starts with a
    // spread and then adds members some forty times slower, and this runs on every decision.
    const out: Verdict = rule === undefined ? v : inspect ? { verdict: v.verdict, reasons: v.reasons, rule, inspect: true as const } : { verdict: v.verdict, reasons: v.reasons, rule };
    return leaks.length === 0 && credentials.length === 0 ? out : { ...out, ...found };
  };
  if (hard.length > 0) return withRule({ verdict: "block", reasons: unique([...hard, ...violations]) });
  if (violations.length > 0) {
    return withRule({ verdict: ctx.mode === "enforcing" ? "block" : "would-block", reasons: unique([...violations, ...weak]) });
  }
  if (weak.length > 0) return withRule({ verdict: "flag", reasons: unique([...weak, ...allowed]) });
  return withRule({ verdict: "allow", reasons: allowed });
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** Whether traffic may flow for this verdict (would-block flows: that is OBSERVING). */
export function permits(v: Verdict): boolean {
  return v.verdict !== "block";
}

/**
 * Whether the sidecar may resolve this attempt's name upstream. Stricter than `permits` in
 * OBSERVING: a lookup is itself egress (the name reaches whoever serves its zone), so a
 * would-block verdict is looked up only when baseline drift is all that stands against it,
 * that is, when ENFORCING without the baseline would permit it. An undeclared name, an
 * undeclared record type or a tunnelling signal is never looked up, whatever the mode.
 */
export function permitsLookup(ctx: DecisionContext, attempt: Attempt, verdict: Verdict = decide(ctx, attempt)): boolean {
  if (verdict.verdict !== "would-block") return permits(verdict);
  const { baseline: _drift, ...policyOnly } = ctx;
  // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
  return permits(decide({ ...policyOnly, mode: "enforcing" }, attempt));
}
