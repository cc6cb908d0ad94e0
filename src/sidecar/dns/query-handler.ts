import { decide, permits, permitsLookup, type Attempt, type DecisionContext, type Verdict } from "../../core/decision.js";
import { isHangarError } from "../../core/errors.js";
import { EVENT_SCHEMA_VERSION, type EgressEvent } from "../../core/events.js";
import { parseIp } from "../../core/ip.js";
import { normaliseHostName } from "../../core/names.js";
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
}

const TCP_MAX = 65_535;
const MALFORMED: Verdict = { verdict: "block", reasons: ["malformed-request"] };

export class DnsQueryHandler {
  private readonly ctx: SidecarContext;

  constructor(private readonly options: DnsQueryHandlerOptions) {
    this.ctx = options.context;
  }

  /** The response to send, or undefined to stay silent. Never throws. */
  async handle(message: Buffer, origin: QueryOrigin): Promise<Buffer | undefined> {
    const parsed = parseQuery(message, this.options.maxMessageBytes);
    if (!parsed.ok) {
      const { reason, header } = parsed.rejection;
      this.reportMalformed(origin, reason);
      return header === undefined ? undefined : buildHeaderOnlyResponse(header);
    }
    const query = parsed.query;
    let outcome: Outcome;
    let name = query.name;
    try {
      name = (query.plainName ? normaliseHostName(query.name) : undefined) ?? query.name;
      outcome = await this.resolveQuery(query);
    } catch (err) {
      this.ctx.logger.error({ err, name }, "dns query failed unexpectedly");
      outcome = { verdict: MALFORMED, rcode: RCODE.SERVFAIL, error: "internal error" };
    }
    this.emit(origin, outcome, name, recordTypeName(query.qtype), query.name);
    const udpLimit = query.edns === undefined ? 512 : Math.min(Math.max(query.edns.udpSize, 512), this.options.maxUdpPayloadBytes);
    return buildResponse(query, {
      rcode: outcome.rcode,
      ...(outcome.answers === undefined ? {} : { answers: outcome.answers }),
      maxBytes: origin.transport === "tcp" ? TCP_MAX : udpLimit,
      ednsUdpSize: this.options.maxUdpPayloadBytes,
    });
  }

  /** Emits the event for a message that never became a query (bad framing, garbage). */
  reportMalformed(origin: QueryOrigin, reason: string): void {
    this.emit(origin, { verdict: MALFORMED, rcode: RCODE.FORMERR, error: reason }, undefined, undefined);
  }

  private async resolveQuery(query: DnsQuery): Promise<Outcome> {
    if (!isClassIn(query)) return { verdict: MALFORMED, rcode: RCODE.REFUSED, error: `class ${query.qclass} is not served` };
    // One snapshot per query, so a reload mid-query cannot mix two policies.
    const dc = this.ctx.decisionContext();
    const type = recordTypeName(query.qtype);
    const name = query.plainName ? normaliseHostName(query.name) : undefined;
    const attempt = this.attempt(dc, query.name, name, type);
    const verdict = decide(dc, attempt);
    if (name === undefined) {
      // An IP literal or junk as a question: nothing to resolve, whatever the policy says.
      return { verdict, rcode: RCODE.NXDOMAIN, ...(permits(verdict) ? { error: "question is not a host name" } : {}) };
    }
    const capture = dc.policy.capture.enabled;
    const nodataOrNx = (): Rcode => (this.nameAnswerable(dc, attempt) ? RCODE.NOERROR : RCODE.NXDOMAIN);
    switch (query.qtype) {
      case QTYPE.A:
        return capture ? this.captureAnswer(verdict) : this.answerA(dc, attempt, verdict, name);
      case QTYPE.AAAA:
        // NODATA, never NXDOMAIN, for a name whose A is answered: NXDOMAIN means "no records of
        // any type", and stub resolvers such as musl then drop the A answer too.
        return { verdict, rcode: nodataOrNx() };
      case QTYPE.TXT:
      case QTYPE.HTTPS:
      case QTYPE.SVCB:
        if (capture || !permitsLookup(dc, attempt, verdict)) return { verdict, rcode: nodataOrNx() };
        return this.answerRecords(dc, attempt, verdict, name, type as ExtraRecordType);
      default:
        return { verdict, rcode: nodataOrNx(), ...(permits(verdict) ? { error: `record type ${type} is never answered` } : {}) };
    }
  }

  private attempt(dc: DecisionContext, raw: string, name: string | undefined, recordType: string): Attempt {
    // The account the proxy paths share: a name asked here and then by SNI counts once.
    const facts = name === undefined ? {} : this.ctx.names.observe(dc.policy, name);
    return { stage: "dns", protocol: "dns", name: raw, recordType, ...facts };
  }

  /** Whether an A query for this name would be answered (decides the NODATA/NXDOMAIN choice). */
  private nameAnswerable(dc: DecisionContext, attempt: Attempt): boolean {
    return dc.policy.capture.enabled || permitsLookup(dc, { ...attempt, recordType: "A" });
  }

  private captureAnswer(verdict: Verdict): Outcome {
    const mode = this.options.answer;
    const address = mode.kind === "sidecar" ? mode.address : mode.captureAddress;
    if (address === undefined) return { verdict, rcode: RCODE.NXDOMAIN, error: "capture mode has no answer address" };
    return { verdict, rcode: RCODE.NOERROR, answers: [aRecord(address, this.options.answerTtlCapSeconds)], ip: address };
  }

  private async answerA(dc: DecisionContext, attempt: Attempt, verdict: Verdict, name: string): Promise<Outcome> {
    if (!permitsLookup(dc, attempt, verdict)) return { verdict, rcode: RCODE.NXDOMAIN };
    this.ctx.names.charge(dc.policy, name);
    let resolved: ResolvedName;
    try {
      resolved = await this.ctx.resolver.resolve(name);
    } catch (err) {
      return upstreamFailure(verdict, err);
    }
    const ips = resolved.ips.filter((ip) => parseIp(ip)?.version === 4);
    // The rebinding check: the same decision again, now knowing where the name really points.
    const checked = decide(dc, { ...attempt, resolvedIps: resolved.ips });
    if (!permits(checked)) return { verdict: checked, rcode: RCODE.NXDOMAIN };
    if (ips.length === 0) return { verdict: checked, rcode: RCODE.NOERROR };
    const mode = this.options.answer;
    const given = mode.kind === "sidecar" ? [mode.address] : ips;
    const ttl = this.remainingTtl(resolved.expiresAt);
    return { verdict: checked, rcode: RCODE.NOERROR, answers: given.map((ip) => aRecord(ip, ttl)), ip: given[0]! };
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
      checked = decide(dc, { ...attempt, resolvedIps: hints });
      if (!permits(checked)) return { verdict: checked, rcode: RCODE.NXDOMAIN };
    }
    return { verdict: checked, rcode: RCODE.NOERROR, answers };
  }

  private remainingTtl(expiresAt: number): number {
    const left = Math.ceil((expiresAt - this.ctx.now()) / 1000);
    return Math.max(0, Math.min(this.options.answerTtlCapSeconds, left));
  }

  private emit(origin: QueryOrigin, outcome: Outcome, name: string | undefined, recordType: string | undefined, asSent?: string): void {
    const v = outcome.verdict;
    const event: EgressEvent = {
      v: EVENT_SCHEMA_VERSION,
      ts: new Date(this.ctx.now()).toISOString(),
      id: this.ctx.newId(),
      type: "dns",
      phase: "decide",
      server: this.ctx.server,
      verdict: v.verdict,
      reasons: v.reasons,
      ...(v.rule === undefined ? {} : { rule: v.rule }),
      ...(v.leaks === undefined ? {} : { secretLeaks: v.leaks }),
      ...(name === undefined ? {} : { name }),
      ...(asSent === undefined || asSent === name ? {} : { nameAsSent: asSent.slice(0, 512) }),
      ...(recordType === undefined ? {} : { recordType }),
      protocol: "dns",
      path: "dns",
      client: origin.address,
      ...(outcome.ip === undefined ? {} : { ip: outcome.ip }),
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    };
    try {
      this.ctx.events.emit(event);
    } catch (err) {
      this.ctx.logger.error({ err }, "event sink failed");
    }
  }
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
