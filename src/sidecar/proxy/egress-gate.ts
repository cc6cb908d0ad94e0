import { decide, permits, type Attempt, type DecisionContext, type Protocol, type ReasonCode, type Verdict } from "../../core/decision.js";
import { parseIp } from "../../core/ip.js";
import { normaliseHostName } from "../../core/names.js";
import type { SidecarContext } from "../sidecar-context.js";
import type { NameFacts } from "../name-accounting.js";
import type { ConnectionRate } from "./connection-rate.js";

/**
 * The proxy's side of "one decision": every connection attempt on either path asks the
 * core `decide()` before anything is resolved, then resolves the name with the sidecar's
 * own resolver and asks again with the addresses (the rebinding check). The address to
 * dial only ever comes from here: a resolver answer, or an IP literal the policy vetted.
 * Each name it sees goes into the sandbox's one account of names (shared with DNS), and it
 * resolves only what the DNS path would resolve, so no path is a way round the other.
 */
export interface Destination {
  readonly protocol: Protocol;
  readonly port: number;
  /** A name as observed (SNI, Host, CONNECT authority, port owner). */
  readonly name?: string;
  /** An IP literal destination. */
  readonly ip?: string;
  readonly sniMismatch?: boolean;
  readonly sniMissing?: boolean;
  readonly hostMismatch?: boolean;
  /** One HTTP request: method and request target, for a rule's `http` routes. */
  readonly method?: string;
  readonly target?: string;
  /** The sidecar will not see the requests on this connection. */
  readonly opaque?: boolean;
  /** What the request carries of the sandbox's secrets, and credential shapes (core/secrets). */
  readonly secretLeaks?: Attempt["secretLeaks"];
  readonly credentials?: Attempt["credentials"];
  readonly connectionsPerMinute?: number;
}

export type Route =
  | { readonly permitted: true; readonly verdict: Verdict; readonly ip: string }
  | { readonly permitted: false; readonly verdict: Verdict };

/** Remembered normalisations; a flood of distinct names only empties the memo, never grows it. */
const MEMO_ENTRIES = 512;

export class EgressGate {
  // normaliseHostName goes through the URL parser (IDNA) and is pure: every request on a
  // keep-alive connection names the same host, so remember the answer.
  private readonly normalised = new Map<string, string | null>();

  constructor(
    private readonly ctx: SidecarContext,
    private readonly rate: ConnectionRate,
  ) {}

  /** `normaliseHostName`, memoised: undefined for a name that is not a valid host name. */
  normalise(name: string): string | undefined {
    let out = this.normalised.get(name);
    if (out === undefined) {
      if (this.normalised.size >= MEMO_ENTRIES) this.normalised.clear();
      out = normaliseHostName(name) ?? null;
      this.normalised.set(name, out);
    }
    return out ?? undefined;
  }

  /**
   * Counts this attempt toward its destination's per-minute rate. Call once per attempt,
   * with the name as the attempt records it (normalised where it can be).
   */
  count(name: string | undefined, port: number): number | undefined {
    if (name === undefined) return undefined;
    return this.rate.hit(`${name}:${port}`);
  }

  /**
   * Who a nameless connection on `port` belongs to: the one host rule declaring that port
   * (protocols that carry no name), or nobody when several do.
   */
  portOwner(port: number): { readonly name?: string; readonly ambiguous: boolean } {
    const owner = this.ctx.decisionContext().policy.portOwners.get(port);
    if (owner === "ambiguous") return { ambiguous: true };
    return owner === undefined ? { ambiguous: false } : { name: owner, ambiguous: false };
  }

  /**
   * The first decision, on what the client said alone. `ambiguousPort`: the attempt named
   * nothing and several rules declare its port, so there is no owner to fall back to.
   */
  check(dest: Destination, ambiguousPort = false): Verdict {
    return this.checkIn(this.ctx.decisionContext(), dest, ambiguousPort);
  }

  /**
   * check() and route() as one synchronous step: nothing can run between the two decisions,
   * so the first is not taken twice. The route is at once when the ledger holds the name fresh
   * (or the destination is an address), else a promise of it. A refusal's route repeats `first`.
   */
  checkAndRoute(dest: Destination, ambiguousPort = false): { readonly first: Verdict; readonly route: Route | Promise<Route> } {
    const dc = this.ctx.decisionContext();
    const first = this.checkIn(dc, dest, ambiguousPort);
    if (!permits(first)) return { first, route: { permitted: false, verdict: first } };
    return { first, route: this.routeIn(dc, dest, first, false) };
  }

  private checkIn(dc: DecisionContext, dest: Destination, ambiguousPort: boolean): Verdict {
    const verdict = decide(dc, { stage: "connect", ...dest, ...this.observe(dc, dest.name) });
    if (ambiguousPort && verdict.reasons[0] !== "capture") {
      return { verdict: "block", reasons: verdict.reasons.map((r) => (r === "no-name" ? "ambiguous-port" : r)) };
    }
    // Without a name or an address there is nowhere to send the bytes, whatever the mode.
    // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
    if (dest.name === undefined && dest.ip === undefined && verdict.verdict !== "block") return { ...verdict, verdict: "block" };
    return verdict;
  }

  /**
   * Resolves (or takes a vetted literal), decides again with the answer, and names the one
   * address to dial. `first` is what `check(dest)` said.
   */
  async route(dest: Destination, first: Verdict): Promise<Route> {
    return this.routeIn(this.ctx.decisionContext(), dest, first, true);
  }

  /**
   * `recheck`: decide again on the account as it stands now, for a caller that may have
   * awaited since check() (another path may have spent the budget meanwhile).
   */
  private routeIn(dc: DecisionContext, dest: Destination, first: Verdict, recheck: boolean): Route | Promise<Route> {
    if (dest.ip !== undefined) {
      const ip = parseIp(dest.ip);
      if (!permits(first) || ip === undefined) return { permitted: false, verdict: first };
      return { permitted: true, verdict: first, ip: ip.text };
    }
    const name = dest.name === undefined ? undefined : this.normalise(dest.name);
    if (!permits(first) || name === undefined) return { permitted: false, verdict: first };
    // One snapshot from here on, and charged before anything awaits.
    const facts = this.observe(dc, name);
    const attempt: Attempt = { stage: "connect", ...dest, name, ...facts };
    const current = recheck ? decide(dc, attempt) : first;
    if (!permits(current)) return { permitted: false, verdict: current };
    // The lookup is egress of its own: only a name the DNS path would look up is looked up
    // here, so OBSERVING refuses an undeclared or tunnelling name (would-block) unresolved.
    // Drift is left to the connection's verdict, as permitsLookup leaves it to the query's.
    // Anything else the policy refuses is a would-block here, so nothing else needs asking.
    if (current.verdict === "would-block" && !permits(lookupVerdict(dc, { stage: "dns", protocol: "dns", name, recordType: "A", ...facts }))) {
      return { permitted: false, verdict: current };
    }
    this.ctx.names.charge(dc.policy, name);
    const held = this.ctx.resolver.peek?.(name);
    if (held !== undefined) return resolved(dc, attempt, current, held.ips);
    return this.ctx.resolver.resolve(name).then(
      (answer) => resolved(dc, attempt, current, answer.ips),
      (err: unknown) => {
        this.ctx.logger.debug({ err, name }, "upstream resolution failed");
        return { permitted: false, verdict: unresolvable(current) };
      },
    );
  }

  /** Counts `raw` (a name as observed) into the account; nothing for an address or a non-name. */
  private observe(dc: DecisionContext, raw: string | undefined): NameFacts {
    const name = raw === undefined ? undefined : this.normalise(raw);
    return name === undefined ? {} : this.ctx.names.observe(dc.policy, name);
  }
}

/** The decision again with the addresses the name resolved to (the rebinding check), and the one to dial. */
function resolved(dc: DecisionContext, attempt: Attempt, current: Verdict, ips: readonly string[]): Route {
  if (ips.length === 0) return { permitted: false, verdict: unresolvable(current) };
  // Assigned over the attempt, so nothing in it can stand in for the addresses, and without the
  // slow literal shape `{ ...attempt, resolvedIps }` (see eslint.config.js).
  const verdict = decide(dc, Object.assign({}, attempt, { resolvedIps: ips }));
  if (!permits(verdict)) return { permitted: false, verdict };
  return { permitted: true, verdict, ip: ips[0]! };
}

/** The DNS path's rule for a lookup (`permitsLookup`), without the baseline: blocks unless the policy lets the name be looked up. */
function lookupVerdict(dc: DecisionContext, attempt: Attempt): Verdict {
  const { baseline: _drift, ...policyOnly } = dc;
  // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
  return decide({ ...policyOnly, mode: "enforcing" }, attempt);
}

function unresolvable(v: Verdict): Verdict {
  const reasons: ReasonCode[] = ["upstream-unresolvable", ...v.reasons.filter((r) => r !== "upstream-unresolvable")];
  // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
  return { ...v, verdict: "block", reasons };
}
