import type { Verdict } from "../../core/decision.js";
import { EVENT_SCHEMA_VERSION, type EgressEvent } from "../../core/events.js";
import { IsoTimestamps, quote } from "../event-text.js";

/**
 * The one event of a DNS query, two ways from the same inputs: as an object (for a sink that
 * takes objects, such as the redacting one) and as its JSON line built from prebuilt
 * fragments (for the event writer). JSON.stringify of the object was the largest share of a
 * query's CPU in JavaScript; the line here is the very same text, byte for byte, field order
 * included (test/sidecar/dns/dns-event.test.ts compares the two).
 */
export interface DnsEventFields {
  readonly ts: string;
  readonly id: string;
  readonly server: string;
  readonly verdict: Verdict;
  readonly client: string;
  /** The normalised name (or the question as sent when it is no host name). */
  readonly name: string | undefined;
  /** The question name as sent; recorded when it differs from `name`. */
  readonly asSent: string | undefined;
  /** Both names are made of [A-Za-z0-9._-] only, so they need no JSON escaping. */
  readonly plain: boolean;
  readonly recordType: string | undefined;
  readonly ip: string | undefined;
  readonly error: string | undefined;
}

const MAX_NAME_AS_SENT = 512;

/** The event object, fields in the order every DNS event has had on the wire. */
export function dnsEvent(f: DnsEventFields): EgressEvent {
  const v = f.verdict;
  // Filled in place, without the throwaway objects of conditional spreads.
  const event: { -readonly [K in keyof EgressEvent]: EgressEvent[K] } = {
    v: EVENT_SCHEMA_VERSION,
    ts: f.ts,
    id: f.id,
    type: "dns",
    phase: "decide",
    server: f.server,
    verdict: v.verdict,
    reasons: v.reasons,
    protocol: "dns",
    path: "dns",
    client: f.client,
  };
  if (v.rule !== undefined) event.rule = v.rule;
  if (v.leaks !== undefined) event.secretLeaks = v.leaks;
  if (f.name !== undefined) event.name = f.name;
  if (f.asSent !== undefined && f.asSent !== f.name) event.nameAsSent = f.asSent.slice(0, MAX_NAME_AS_SENT);
  if (f.recordType !== undefined) event.recordType = f.recordType;
  if (f.ip !== undefined) event.ip = f.ip;
  if (f.error !== undefined) event.error = f.error;
  return event;
}

/** Builds DNS event lines (without the newline) and their timestamps, reusing what repeats. */
export class DnsEventEncoder {
  private readonly clock = new IsoTimestamps();
  private server: string | undefined;
  private head = "";
  private client: string | undefined;
  private clientText = "";
  /**
   * The text before and after `client` for a verdict: by its content when it has one reason and
   * no leaks (nearly all; decide() makes a fresh object per call), else by the object (cached
   * decisions hand out the same one).
   */
  private readonly simpleVerdicts = new Map<string, Map<string, Map<string, VerdictText>>>();
  private readonly verdicts = new WeakMap<Verdict, VerdictText>();

  /** new Date(now).toISOString(), formatting only once per second. */
  timestamp(now: number): string {
    return this.clock.text(now);
  }

  /** JSON.stringify(dnsEvent(f)), the same text. */
  line(f: DnsEventFields): string {
    if (f.server !== this.server) {
      this.server = f.server;
      this.head = `,"type":"dns","phase":"decide","server":${JSON.stringify(f.server)},"verdict":`;
    }
    if (f.client !== this.client) {
      this.client = f.client;
      this.clientText = quote(f.client);
    }
    const parts = this.verdictText(f.verdict);
    let out = `{"v":${EVENT_SCHEMA_VERSION},"ts":${quote(f.ts)},"id":${quote(f.id)}${this.head}${parts.before}${this.clientText}${parts.after}`;
    if (f.name !== undefined) out += `,"name":${f.plain ? `"${f.name}"` : quote(f.name)}`;
    if (f.asSent !== undefined && f.asSent !== f.name) {
      const sent = f.asSent.slice(0, MAX_NAME_AS_SENT);
      out += `,"nameAsSent":${f.plain ? `"${sent}"` : quote(sent)}`;
    }
    if (f.recordType !== undefined) out += `,"recordType":${quote(f.recordType)}`;
    if (f.ip !== undefined) out += `,"ip":${quote(f.ip)}`;
    if (f.error !== undefined) out += `,"error":${quote(f.error)}`;
    return `${out}}`;
  }

  private verdictText(v: Verdict): VerdictText {
    if (v.reasons.length === 1 && v.leaks === undefined) {
      let byVerdict = this.simpleVerdicts.get(v.verdict);
      if (byVerdict === undefined) this.simpleVerdicts.set(v.verdict, (byVerdict = new Map()));
      const reason = v.reasons[0]!;
      let byReason = byVerdict.get(reason);
      if (byReason === undefined) byVerdict.set(reason, (byReason = new Map()));
      const rule = v.rule ?? "";
      let text = byReason.get(rule);
      if (text === undefined) byReason.set(rule, (text = encodeVerdict(v)));
      return text;
    }
    let text = this.verdicts.get(v);
    if (text === undefined) this.verdicts.set(v, (text = encodeVerdict(v)));
    return text;
  }
}

interface VerdictText {
  readonly before: string;
  readonly after: string;
}

function encodeVerdict(v: Verdict): VerdictText {
  return {
    before: `${JSON.stringify(v.verdict)},"reasons":${JSON.stringify(v.reasons)},"protocol":"dns","path":"dns","client":`,
    after: `${v.rule === undefined ? "" : `,"rule":${JSON.stringify(v.rule)}`}${v.leaks === undefined ? "" : `,"secretLeaks":${JSON.stringify(v.leaks)}`}`,
  };
}
