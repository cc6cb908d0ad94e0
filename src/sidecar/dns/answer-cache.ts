import type { DecisionContext, Verdict } from "../../core/decision.js";
import { normaliseHostName } from "../../core/names.js";
import type { DnsQuery, Rcode } from "./dns-message.js";

/**
 * What the DNS hot path may remember between queries, for ONE policy snapshot (the
 * DecisionContext object; a reload makes a new one, and `DnsAnswerCaches.for` then starts
 * empty). Only what is a pure function of (snapshot, question) is kept here:
 * - the normalised form of a question name (a pure function of its lowercase text);
 * - the decision for a name under no wildcard rule: NameAccounting.observe() returns no
 *   counts for such a name, so decide() sees the same attempt every time and its verdict
 *   cannot change until the snapshot does. Names under a wildcard carry per-query rates
 *   (tunnelling, budget) and are decided afresh on every query;
 * - the encoded response, keyed by (name, type, EDNS or not; class IN only) and tied to the answer it was
 *   built from (rcode, and for A answers the very ledger entry: its address array and
 *   expiry). Every send copies it and patches what differs per query: the ID, the RD flag,
 *   the question bytes as sent (0x20 casing) and the TTL left on the ledger entry, which is
 *   what buildResponse would have written.
 * Name accounting, the ledger lookup and the event still run on every query, cached or not.
 */
export interface PureDecision {
  readonly verdict: Verdict;
  /** permitsLookup() for this attempt, once some query needed it. */
  lookup?: boolean;
  /** Whether an A query for the name would be answered (NODATA rather than NXDOMAIN), once needed. */
  answerable?: boolean;
  /** The rebinding re-decision for the ledger answer `ips` (by identity), and its IPv4 addresses. */
  rebound?: { readonly ips: readonly string[]; readonly ipv4: readonly string[]; readonly verdict: Verdict };
}

/** What a response was built from; a cached response is reused only for the same source. */
export interface AnswerSource {
  readonly rcode: Rcode;
  /** The ledger entry's address array (by identity) and expiry, for A answers. */
  readonly ips?: readonly string[];
  readonly expiresAt?: number;
}

interface Template {
  readonly source: AnswerSource;
  readonly bytes: Buffer;
  readonly ttlOffsets: readonly number[];
}

/** Largest response cached: it fits every transport's limit, so it is never one that was truncated. */
const MAX_TEMPLATE_BYTES = 512;

/** What is kept for one name: decisions by query type, responses by query type and EDNS. */
interface NameEntry {
  decisions?: Map<number, PureDecision>;
  templates?: Map<number, Template>;
}

/** A normalised question name, and whether the name was asked before. */
interface Normalised {
  readonly name: string | undefined;
  repeated: boolean;
}

const CLASS_IN = 1;

export class DnsAnswerCache {
  /** Lowercase name → its normalised form (name undefined when it is not a host name). */
  private readonly normalised: GenerationMap<Normalised>;
  /**
   * Decisions (keyed by normalised name) and responses (keyed by lowercase name): one entry per
   * name, so a query costs one lookup with the name's own string, no key built from parts. A
   * name's lowercase and normalised forms are nearly always the same text, and either way what
   * is kept is a pure function of that text.
   */
  private readonly names: GenerationMap<NameEntry>;

  constructor(maxEntries: number) {
    this.normalised = new GenerationMap(maxEntries);
    this.names = new GenerationMap(maxEntries);
  }

  /**
   * normaliseHostName of a plain (ASCII letters, digits, "-", "_") name given in lowercase, and
   * whether the name was asked before: only a repeated name earns a decision and a response
   * kept, so a stream of fresh names (a scan, a tunnel) costs no more than without the cache.
   */
  normalise(lowerName: string): { readonly name: string | undefined; readonly repeated: boolean } {
    const known = this.normalised.get(lowerName);
    if (known !== undefined) {
      known.repeated = true;
      return known;
    }
    const fresh: Normalised = { name: normaliseHostName(lowerName), repeated: false };
    this.normalised.set(lowerName, fresh);
    return fresh;
  }

  decision(name: string, qtype: number): PureDecision | undefined {
    return this.names.get(name)?.decisions?.get(qtype);
  }

  storeDecision(name: string, qtype: number, decision: PureDecision): void {
    (this.entry(name).decisions ??= new Map()).set(qtype, decision);
  }

  /** The cached response for this query and source, patched for it; undefined on a miss. */
  response(lowerName: string, query: DnsQuery, source: AnswerSource, ttl: number): Buffer | undefined {
    if (query.qclass !== CLASS_IN) return undefined;
    const hit = this.names.get(lowerName)?.templates?.get(templateKey(query));
    if (hit === undefined || !sameSource(hit.source, source)) return undefined;
    const out = Buffer.allocUnsafe(hit.bytes.length);
    hit.bytes.copy(out);
    out.writeUInt16BE(query.id, 0);
    out[2] = (out[2]! & 0xfe) | (query.recursionDesired ? 1 : 0);
    query.question.copy(out, 12);
    for (const offset of hit.ttlOffsets) out.writeUInt32BE(ttl, offset);
    return out;
  }

  /** Remembers `bytes` (a response to `query` built from `source`) when it can be patched as above. */
  storeResponse(lowerName: string, query: DnsQuery, source: AnswerSource, bytes: Buffer): void {
    // A truncated (TC) response was cut for this transport's limit; a bad EDNS version gets no answers.
    const truncated = (bytes[2]! & 0x02) !== 0;
    if (query.qclass !== CLASS_IN || truncated || bytes.length > MAX_TEMPLATE_BYTES || (query.edns !== undefined && query.edns.version !== 0)) return;
    const answers = bytes.readUInt16BE(6);
    const ttlOffsets: number[] = [];
    // Our answers are owned by a 2-byte pointer to the question: pointer, type, class, TTL, rdlength, rdata.
    let offset = 12 + query.question.length;
    for (let i = 0; i < answers; i++) {
      ttlOffsets.push(offset + 6);
      offset += 12 + bytes.readUInt16BE(offset + 10);
    }
    (this.entry(lowerName).templates ??= new Map()).set(templateKey(query), { source, bytes: Buffer.from(bytes), ttlOffsets });
  }

  private entry(name: string): NameEntry {
    let entry = this.names.get(name);
    if (entry === undefined) this.names.set(name, (entry = {}));
    return entry;
  }
}

/** One cache per policy snapshot: asking with a new snapshot drops the old cache. */
export class DnsAnswerCaches {
  private snapshot: DecisionContext | undefined;
  private current: DnsAnswerCache | undefined;

  // Per map. A sandbox asks for a handful of names; a flood of fresh names (a tunnel) only
  // cycles the oldest out, so the cache stays around a megabyte at worst.
  constructor(private readonly maxEntries = 1024) {}

  for(dc: DecisionContext): DnsAnswerCache {
    if (this.snapshot !== dc || this.current === undefined) {
      this.snapshot = dc;
      this.current = new DnsAnswerCache(this.maxEntries);
    }
    return this.current;
  }
}

/** Query type and EDNS or not (class IN only), as one small integer. */
function templateKey(query: DnsQuery): number {
  return query.qtype * 2 + (query.edns === undefined ? 0 : 1);
}

function sameSource(a: AnswerSource, b: AnswerSource): boolean {
  return a.rcode === b.rcode && a.ips === b.ips && a.expiresAt === b.expiresAt;
}

/**
 * At most `max` entries in two generations of half that: inserts go to the young one, and a
 * full young generation becomes the old one, whose entries all go at once. No per-insert
 * eviction (a Map's oldest key is found by skipping its deleted slots), so a stream of fresh
 * names pays one Map.set each. An entry read from the old generation moves to the young one.
 */
class GenerationMap<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly half: number;

  constructor(max: number) {
    this.half = Math.max(1, Math.floor(max / 2));
  }

  get(key: string): V | undefined {
    const value = this.young.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) {
      this.old.delete(key);
      this.set(key, aged);
    }
    return aged;
  }

  set(key: string, value: V): void {
    if (!this.young.has(key) && this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}
