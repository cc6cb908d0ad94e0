import { decide, permits, permitsLookup, type Attempt, type DecisionContext, type Verdict } from "../../core/decision.js";
import { isHangarError } from "../../core/errors.js";
import { parseIp } from "../../core/ip.js";
import { takesEncodedEvents, type EncodedEventSink } from "../event-writer.js";
import { NO_FACTS } from "../name-accounting.js";
import type { ResolvedName, SidecarContext } from "../sidecar-context.js";
import {
  QTYPE,
  RCODE,
  buildHeaderOnlyResponse,
  buildResponse,
  ipv4Rdata,
  isClassIn,
  parseQuery,
  recordTypeName,
  type DnsQuery,
  type Rcode,
  type WireRecord,
} from "./dns-message.js";
import { DnsAnswerCaches, type AnswerSource, type DnsAnswerCache, type PureDecision } from "./answer-cache.js";
import { DnsEventEncoder, dnsEvent, type DnsEventFields } from "./dns-event.js";
import { rewriteSvcb } from "./svcb-params.js";
import type { ExtraRecordType, RecordAnswer, RecordSource } from "./upstream-client.js";

/**
 * One DNS query, start to finish: parse, decide, ask upstream only when the decision
 * permits a lookup, decide again on what upstream said (rebinding), answer, and emit exactly
 * one event. In OBSERVING a name the policy refuses is answered NXDOMAIN (would-block) and
 * never asked upstream, since the lookup itself would carry it out; only baseline drift
 * flows. Transport-free, so the UDP and TCP listeners share it.
 */
export type AnswerMode =
  /** Transparent mode: declared names resolve to the sidecar itself. */
  | { readonly kind: "sidecar"; readonly address: string }
  /** Hand out the real upstream addresses (explicit-proxy-only setups). */
  | { readonly kind: "upstream"; readonly captureAddress?: string };

export interface QueryOrigin {
  readonly address: string;
  readonly port: number;
  readonly transport: "udp" | "tcp";
}

export interface DnsQueryHandlerOptions {
  readonly context: SidecarContext;
  readonly records: RecordSource;
  readonly answer: AnswerMode;
  readonly answerTtlCapSeconds: number;
  readonly maxMessageBytes: number;
  readonly maxUdpPayloadBytes: number;
}

interface Outcome {
  readonly verdict: Verdict;
  readonly rcode: Rcode;
  readonly answers?: readonly WireRecord[];
  readonly ip?: string;
  readonly error?: string;
  /** What the response depends on besides the question; set where a cached response may stand in (answer-cache.ts). */
  readonly source?: AnswerSource;
  /** The TTL written into every answer record. */
  readonly ttl?: number;
}

const TCP_MAX = 65_535;
const MALFORMED: Verdict = { verdict: "block", reasons: ["malformed-request"] };

export class DnsQueryHandler {
  private readonly ctx: SidecarContext;
  private readonly caches = new DnsAnswerCaches();
  private readonly encoder = new DnsEventEncoder();
  /** The sink when it takes events as JSON text (the event writer): then no object is built. */
  private readonly encodedSink: EncodedEventSink | undefined;

  /** The sidecar's own address as A rdata, encoded once. */
  private readonly sidecarRdata: Buffer | undefined;

  constructor(private readonly options: DnsQueryHandlerOptions) {
    this.ctx = options.context;
    this.encodedSink = takesEncodedEvents(this.ctx.events) ? this.ctx.events : undefined;
    this.sidecarRdata = options.answer.kind === "sidecar" ? ipv4Rdata(options.answer.address) : undefined;
  }

  /**
   * The response to send, or undefined to stay silent. Never throws, and never rejects. Answered
   * at once unless upstream must be asked: only then is the result a promise.
   */
  handle(message: Buffer, origin: QueryOrigin): Buffer | undefined | Promise<Buffer | undefined> {
    const parsed = parseQuery(message, this.options.maxMessageBytes);
    if (!parsed.ok) {
      const { reason, header } = parsed.rejection;
      this.reportMalformed(origin, reason);
      return header === undefined ? undefined : buildHeaderOnlyResponse(header);
    }
    const query = parsed.query;
    let outcome: Outcome | Promise<Outcome>;
    let name = query.name;
    // Plain names only: their lowercase text is what every cached fact is keyed by.
    const lower = query.plainName ? query.lowerName : undefined;
    let cache: DnsAnswerCache | undefined;
    try {
      // One snapshot per query, so a reload mid-query cannot mix two policies.
      const dc = this.ctx.decisionContext();
      cache = this.caches.for(dc);
      const normal = lower === undefined ? undefined : cache.normalise(lower);
      if (normal?.repeated !== true) cache = undefined;
      name = normal?.name ?? query.name;
      outcome = this.resolveQuery(dc, cache, query, normal?.name);
    } catch (err) {
      outcome = this.failed(err, name);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.finish(query, origin, o, name, cache, lower),
        (err: unknown) => this.finish(query, origin, this.failed(err, name), name, cache, lower),
      );
    }
    return this.finish(query, origin, outcome, name, cache, lower);
  }

  private failed(err: unknown, name: string): Outcome {
    this.ctx.logger.error({ err, name }, "dns query failed unexpectedly");
    return { verdict: MALFORMED, rcode: RCODE.SERVFAIL, error: "internal error" };
  }

  /** The one event, then the response. */
  private finish(query: DnsQuery, origin: QueryOrigin, outcome: Outcome, name: string, cache: DnsAnswerCache | undefined, lower: string | undefined): Buffer {
    this.emit(origin, outcome, name, recordTypeName(query.qtype), query.name, query.plainName);
    return this.respond(query, origin, outcome, lower === undefined ? undefined : cache, lower);
  }

  private respond(query: DnsQuery, origin: QueryOrigin, outcome: Outcome, cache: DnsAnswerCache | undefined, lower: string | undefined): Buffer {
    const source = cache === undefined || lower === undefined ? undefined : outcome.source;
    if (source !== undefined) {
      const cached = cache!.response(lower!, query, source, outcome.ttl ?? 0);
      if (cached !== undefined) return cached;
    }
    const udpLimit = query.edns === undefined ? 512 : Math.min(Math.max(query.edns.udpSize, 512), this.options.maxUdpPayloadBytes);
    const response = buildResponse(query, {
      rcode: outcome.rcode,
      ...(outcome.answers === undefined ? {} : { answers: outcome.answers }),
      maxBytes: origin.transport === "tcp" ? TCP_MAX : udpLimit,
      ednsUdpSize: this.options.maxUdpPayloadBytes,
    });
    if (source !== undefined) cache!.storeResponse(lower!, query, source, response);
    return response;
  }

  /** Emits the event for a message that never became a query (bad framing, garbage). */
  reportMalformed(origin: QueryOrigin, reason: string): void {
    this.emit(origin, { verdict: MALFORMED, rcode: RCODE.FORMERR, error: reason }, undefined, undefined);
  }

  private resolveQuery(dc: DecisionContext, cache: DnsAnswerCache | undefined, query: DnsQuery, name: string | undefined): Outcome | Promise<Outcome> {
    if (!isClassIn(query)) return { verdict: MALFORMED, rcode: RCODE.REFUSED, error: `class ${query.qclass} is not served` };
    const type = recordTypeName(query.qtype);
    // The account the proxy paths share: a name asked here and then by SNI counts once. It
    // runs on every query, cached or not: its counts are the state the decision reads.
    const facts = name === undefined ? NO_FACTS : this.ctx.names.observe(dc.policy, name);
    const attempt: Attempt = { stage: "dns", protocol: "dns", name: query.name, recordType: type, ...facts };
    if (name === undefined) {
      // An IP literal or junk as a question: nothing to resolve, whatever the policy says.
      const verdict = decide(dc, attempt);
      return { verdict, rcode: RCODE.NXDOMAIN, ...(permits(verdict) ? { error: "question is not a host name" } : {}) };
    }
    // No counts (a name under no wildcard): decide() sees the same attempt every time for this
    // snapshot, since it reads the raw name only through case-blind normalisation and secret
    // search, so its results are kept (answer-cache.ts). With counts, decided afresh.
    const pure = facts === NO_FACTS;
    let known: PureDecision | undefined = pure ? cache?.decision(name, query.qtype) : undefined;
    if (pure && cache !== undefined && known === undefined) {
      known = { verdict: decide(dc, attempt) };
      cache.storeDecision(name, query.qtype, known);
    }
    const verdict = known?.verdict ?? decide(dc, attempt);
    // Each derived check is computed only when this query type needs it, and kept when pure.
    const lookup = (): boolean => {
      if (known?.lookup !== undefined) return known.lookup;
      const result = permitsLookup(dc, attempt, verdict);
      if (known !== undefined) known.lookup = result;
      return result;
    };
    const capture = dc.policy.capture.enabled;
    const nodataOrNx = (): Rcode => {
      if (known?.answerable === undefined) {
        const answerable = this.nameAnswerable(dc, attempt);
        if (known === undefined) return answerable ? RCODE.NOERROR : RCODE.NXDOMAIN;
        known.answerable = answerable;
      }
      return known.answerable ? RCODE.NOERROR : RCODE.NXDOMAIN;
    };
    switch (query.qtype) {
      case QTYPE.A:
        return capture ? this.captureAnswer(verdict) : this.answerA(dc, attempt, verdict, name, lookup(), known);
      case QTYPE.AAAA:
        // NODATA, never NXDOMAIN, for a name whose A is answered: NXDOMAIN means "no records of
        // any type", and stub resolvers such as musl then drop the A answer too.
        return bare(verdict, nodataOrNx());
      case QTYPE.TXT:
      case QTYPE.HTTPS:
      case QTYPE.SVCB:
        if (capture || !lookup()) return bare(verdict, nodataOrNx());
        return this.answerRecords(dc, attempt, verdict, name, type as ExtraRecordType);
      default:
        return { ...bare(verdict, nodataOrNx()), ...(permits(verdict) ? { error: `record type ${type} is never answered` } : {}) };
    }
  }

  /** Whether an A query for this name would be answered (decides the NODATA/NXDOMAIN choice). */
  private nameAnswerable(dc: DecisionContext, attempt: Attempt): boolean {
    // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
    return dc.policy.capture.enabled || permitsLookup(dc, { ...attempt, recordType: "A" });
  }

  private captureAnswer(verdict: Verdict): Outcome {
    const mode = this.options.answer;
    const address = mode.kind === "sidecar" ? mode.address : mode.captureAddress;
    if (address === undefined) return { verdict, rcode: RCODE.NXDOMAIN, error: "capture mode has no answer address" };
    return { verdict, rcode: RCODE.NOERROR, answers: [aRecord(address, this.options.answerTtlCapSeconds)], ip: address };
  }

  private answerA(dc: DecisionContext, attempt: Attempt, verdict: Verdict, name: string, lookup: boolean, known: PureDecision | undefined): Outcome | Promise<Outcome> {
    if (!lookup) return bare(verdict, RCODE.NXDOMAIN);
    this.ctx.names.charge(dc.policy, name);
    // A fresh ledger answer needs no wait; only a trip upstream makes this query asynchronous.
    const fresh = this.ctx.resolver.peek?.(name);
    if (fresh !== undefined) return this.answerResolved(dc, attempt, verdict, known, fresh);
    return this.ctx.resolver.resolve(name).then(
      (resolved) => this.answerResolved(dc, attempt, verdict, known, resolved),
      (err: unknown) => upstreamFailure(verdict, err),
    );
  }

  private answerResolved(dc: DecisionContext, attempt: Attempt, verdict: Verdict, known: PureDecision | undefined, resolved: ResolvedName): Outcome {
    // The rebinding check: the same decision again, now knowing where the name really points.
    // The ledger never changes an entry's address array, so the same array means the same
    // addresses, and for a pure decision the same verdict.
    let rebound = known?.rebound;
    if (rebound?.ips !== resolved.ips) {
      rebound = { ips: resolved.ips, ipv4: resolved.ips.filter((ip) => parseIp(ip)?.version === 4), verdict: decide(dc, Object.assign({}, attempt, { resolvedIps: resolved.ips })) };
      if (known !== undefined) known.rebound = rebound;
    }
    const checked = rebound.verdict;
    const ips = rebound.ipv4;
    if (!permits(checked)) return bare(checked, RCODE.NXDOMAIN);
    if (ips.length === 0) return bare(checked, RCODE.NOERROR);
    const mode = this.options.answer;
    const given = mode.kind === "sidecar" ? [mode.address] : ips;
    const ttl = this.remainingTtl(resolved.expiresAt);
    return {
      verdict: checked,
      rcode: RCODE.NOERROR,
      answers: this.sidecarRdata === undefined ? given.map((ip) => aRecord(ip, ttl)) : [{ type: QTYPE.A, ttl, rdata: this.sidecarRdata }],
      ip: given[0]!,
      source: { rcode: RCODE.NOERROR, ips: resolved.ips, expiresAt: resolved.expiresAt },
      ttl,
    };
  }

  private async answerRecords(dc: DecisionContext, attempt: Attempt, verdict: Verdict, name: string, type: ExtraRecordType): Promise<Outcome> {
    let result: RecordAnswer;
    this.ctx.names.charge(dc.policy, name);
    try {
      result = await this.options.records.queryRecords(name, type);
    } catch (err) {
      return upstreamFailure(verdict, err);
    }
    if (result.rcode === "NXDOMAIN") return { verdict, rcode: RCODE.NXDOMAIN, error: "upstream: NXDOMAIN" };
    const mode = this.options.answer;
    const cap = this.options.answerTtlCapSeconds;
    const answers: WireRecord[] = [];
    const hints: string[] = [];
    for (const r of result.records) {
      const ttl = Math.min(cap, r.ttl);
      if (type === "TXT") {
        answers.push({ type: r.type, ttl, rdata: r.rdata });
        continue;
      }
      const rewritten = rewriteSvcb(r.rdata, mode.kind === "sidecar" ? mode.address : undefined);
      if (rewritten === undefined) continue;
      hints.push(...rewritten.ipv4Hints);
      answers.push({ type: r.type, ttl, rdata: rewritten.rdata });
    }
    let checked = verdict;
    if (mode.kind === "upstream" && hints.length > 0) {
      // Address hints handed out as they are get the same rebinding check as A answers.
      checked = decide(dc, Object.assign({}, attempt, { resolvedIps: hints }));
      if (!permits(checked)) return { verdict: checked, rcode: RCODE.NXDOMAIN };
    }
    return { verdict: checked, rcode: RCODE.NOERROR, answers };
  }

  private remainingTtl(expiresAt: number): number {
    const left = Math.ceil((expiresAt - this.ctx.now()) / 1000);
    return Math.max(0, Math.min(this.options.answerTtlCapSeconds, left));
  }

  private emit(origin: QueryOrigin, outcome: Outcome, name: string | undefined, recordType: string | undefined, asSent?: string, plain = false): void {
    try {
      const fields: DnsEventFields = {
        ts: this.encoder.timestamp(this.ctx.now()),
        id: this.ctx.newId(),
        server: this.ctx.server,
        verdict: outcome.verdict,
        client: origin.address,
        name,
        asSent,
        plain,
        recordType,
        ip: outcome.ip,
        error: outcome.error,
      };
      if (this.encodedSink !== undefined) this.encodedSink.emitEncoded(this.encoder.line(fields));
      else this.ctx.events.emit(dnsEvent(fields));
    } catch (err) {
      this.ctx.logger.error({ err }, "event sink failed");
    }
  }
}

/** An outcome whose response is the question and an rcode only, so a cached one can stand in. */
function bare(verdict: Verdict, rcode: Rcode): Outcome {
  return { verdict, rcode, source: { rcode } };
}

function aRecord(address: string, ttl: number): WireRecord {
  return { type: QTYPE.A, ttl, rdata: ipv4Rdata(address) };
}

function upstreamFailure(verdict: Verdict, err: unknown): Outcome {
  if (isHangarError(err, "HANGAR_DNS_UPSTREAM") && err.data["rcode"] === "NXDOMAIN") {
    return { verdict, rcode: RCODE.NXDOMAIN, error: "upstream: NXDOMAIN" };
  }
  return { verdict, rcode: RCODE.SERVFAIL, error: `upstream: ${err instanceof Error ? err.message : String(err)}` };
}
