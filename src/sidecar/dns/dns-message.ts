/**
 * The client side of the wire: a strict parser for incoming queries and an encoder for our
 * responses. We parse queries ourselves rather than with dns-packet because its name decoder
 * joins labels that contain "." (so "a.b" as one label reads as two) and follows pointers
 * into the header; a question name here must be plain labels, read byte for byte.
 */

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, SVCB: 64, HTTPS: 65, ANY: 255 } as const;

const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  ...Object.entries(QTYPE).map(([k, v]) => [v, k] as const),
  [13, "HINFO"],
  [35, "NAPTR"],
  [43, "DS"],
  [48, "DNSKEY"],
  [52, "TLSA"],
  [99, "SPF"],
  [251, "IXFR"],
  [252, "AXFR"],
  [257, "CAA"],
]);

/** Mnemonic for a type number; unknown types use the RFC 3597 form `TYPE123`. */
export function recordTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

const CLASS_IN = 1;
const MAX_NAME_WIRE = 255;
const MAX_ADDITIONALS = 4;

export interface Edns {
  readonly udpSize: number;
  readonly version: number;
}

export interface DnsQuery {
  readonly id: number;
  readonly recursionDesired: boolean;
  /** Presentation form; bytes outside [A-Za-z0-9_-] are escaped as \DDD. The root is ".". */
  readonly name: string;
  /** Every label byte is a letter, digit, "-" or "_". */
  readonly plainName: boolean;
  /** `name` in lowercase for a plain name (the very same string when it has no capitals); else `name`. */
  readonly lowerName: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The question section exactly as received, echoed in the response (keeps the client's 0x20 casing). */
  readonly question: Buffer;
  readonly edns?: Edns;
}

/** Why a message is not a query we serve. `header` is set when a response can still be addressed. */
export interface QueryRejection {
  readonly reason: string;
  readonly header?: { readonly id: number; readonly recursionDesired: boolean; readonly rcode: Rcode };
}

export type ParsedQuery = { readonly ok: true; readonly query: DnsQuery } | { readonly ok: false; readonly rejection: QueryRejection };

export function parseQuery(msg: Buffer, maxBytes: number): ParsedQuery {
  const fail = (reason: string, rcode?: Rcode): ParsedQuery => {
    if (rcode === undefined || msg.length < 12) return { ok: false, rejection: { reason } };
    return { ok: false, rejection: { reason, header: { id: msg.readUInt16BE(0), recursionDesired: (msg[2]! & 1) === 1, rcode } } };
  };
  if (msg.length < 12) return fail("short-header");
  const flags = msg.readUInt16BE(2);
  // Never answer a response: two resolvers pointed at each other would loop forever.
  if ((flags & 0x8000) !== 0) return fail("not-a-query");
  if (msg.length > maxBytes) return fail("too-large", RCODE.FORMERR);
  if (((flags >> 11) & 0xf) !== 0) return fail("unsupported-opcode", RCODE.NOTIMP);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  if (qd !== 1) return fail(`question-count-${qd}`, RCODE.FORMERR);
  if (an !== 0 || ns !== 0 || ar > MAX_ADDITIONALS) return fail("unexpected-sections", RCODE.FORMERR);

  const name = readPlainName(msg, 12);
  if (name === undefined) return fail("bad-question-name", RCODE.FORMERR);
  let offset = name.end;
  if (offset + 4 > msg.length) return fail("truncated-question", RCODE.FORMERR);
  const qtype = msg.readUInt16BE(offset);
  const qclass = msg.readUInt16BE(offset + 2);
  offset += 4;
  // A view, not a copy: each datagram and TCP frame is a buffer of its own.
  const question = msg.subarray(12, offset);

  let edns: Edns | undefined;
  for (let i = 0; i < ar; i++) {
    const rr = readRecordHeader(msg, offset);
    if (rr === undefined) return fail("bad-additional", RCODE.FORMERR);
    if (rr.type === QTYPE.OPT) {
      if (edns !== undefined) return fail("duplicate-opt", RCODE.FORMERR);
      edns = { udpSize: rr.klass, version: (rr.ttl >>> 16) & 0xff };
    }
    offset = rr.end;
  }
  const query: DnsQuery = {
    id: msg.readUInt16BE(0),
    recursionDesired: (flags & 0x0100) !== 0,
    name: name.text,
    plainName: name.plain,
    lowerName: name.lower,
    qtype,
    qclass,
    question,
    ...(edns === undefined ? {} : { edns }),
  };
  return { ok: true, query };
}

export function isClassIn(query: DnsQuery): boolean {
  return query.qclass === CLASS_IN;
}

/** Scratch space for a plain name's text: the wire form with each length byte made a dot. */
const nameScratch = Buffer.alloc(MAX_NAME_WIRE);

function readPlainName(msg: Buffer, start: number): { text: string; lower: string; plain: boolean; end: number } | undefined {
  let plain = true;
  let capitals = false;
  let offset = start;
  for (;;) {
    if (offset >= msg.length) return undefined;
    const len = msg[offset]!;
    offset += 1;
    if (len === 0) break;
    // Compression pointers (and the obsolete extended label types) have no place in the first question.
    if ((len & 0xc0) !== 0 || offset + len > msg.length || offset - start + len > MAX_NAME_WIRE) return undefined;
    for (let i = offset; i < offset + len; i++) {
      const byte = msg[i]!;
      if (byte >= 0x41 && byte <= 0x5a) capitals = true;
      else if (plain && !isPlainByte(byte)) plain = false;
    }
    offset += len;
  }
  const end = offset;
  if (end === start + 1) return { text: ".", lower: ".", plain: false, end };
  if (plain) {
    // The common case, in one pass and one string (two with capitals): "\x03api\x07example" → "api.example".
    const size = end - start - 2;
    msg.copy(nameScratch, 0, start + 1, end - 1);
    for (let i = msg[start]!; i < size; ) {
      const next = i + 1 + nameScratch[i]!;
      nameScratch[i] = DOT;
      i = next;
    }
    const text = nameScratch.toString("latin1", 0, size);
    if (!capitals) return { text, lower: text, plain, end };
    for (let i = 0; i < size; i++) {
      const byte = nameScratch[i]!;
      if (byte >= 0x41 && byte <= 0x5a) nameScratch[i] = byte + 0x20;
    }
    return { text, lower: nameScratch.toString("latin1", 0, size), plain, end };
  }
  // Only the rest needs escaping byte by byte.
  const labels: string[] = [];
  for (let at = start; msg[at]! !== 0; at += 1 + msg[at]!) {
    let label = "";
    for (const byte of msg.subarray(at + 1, at + 1 + msg[at]!)) label += isPlainByte(byte) ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, "0")}`;
    labels.push(label);
  }
  const text = labels.join(".");
  return { text, lower: text, plain, end };
}

const DOT = 0x2e;

function isPlainByte(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d || byte === 0x5f;
}

function readRecordHeader(msg: Buffer, start: number): { type: number; klass: number; ttl: number; end: number } | undefined {
  let offset = start;
  // Skip the owner name: labels, ending in a zero byte or a 2-byte pointer.
  for (let hops = 0; ; hops++) {
    if (offset >= msg.length || hops > 128) return undefined;
    const len = msg[offset]!;
    if (len === 0) {
      offset += 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      offset += 2;
      break;
    }
    if ((len & 0xc0) !== 0) return undefined;
    offset += 1 + len;
  }
  if (offset + 10 > msg.length) return undefined;
  const rdlen = msg.readUInt16BE(offset + 8);
  const end = offset + 10 + rdlen;
  if (end > msg.length) return undefined;
  return { type: msg.readUInt16BE(offset), klass: msg.readUInt16BE(offset + 2), ttl: msg.readUInt32BE(offset + 4), end };
}

export interface WireRecord {
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Buffer;
}

export interface ResponseOptions {
  readonly rcode: Rcode;
  readonly answers?: readonly WireRecord[];
  /** Largest message the transport takes; a bigger response goes out truncated (TC). */
  readonly maxBytes: number;
  /** The EDNS payload size we advertise, when the query used EDNS. */
  readonly ednsUdpSize: number;
}

const BADVERS_HIGH = 1; // extended RCODE 16 = (1 << 4) | 0

/** A response to `query`; answers are owned by the question name (a pointer to offset 12). */
export function buildResponse(query: DnsQuery, options: ResponseOptions): Buffer {
  const badVersion = query.edns !== undefined && query.edns.version !== 0;
  const answers = badVersion ? [] : (options.answers ?? []);
  const full = encode(query, options, answers, false, badVersion);
  if (full.length <= options.maxBytes) return full;
  return encode(query, options, [], true, badVersion);
}

function encode(query: DnsQuery, options: ResponseOptions, answers: readonly WireRecord[], truncated: boolean, badVersion: boolean): Buffer {
  const opt = query.edns === undefined ? undefined : optRecord(options.ednsUdpSize, badVersion ? BADVERS_HIGH : 0);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  const flags = 0x8000 | (truncated ? 0x0200 : 0) | (query.recursionDesired ? 0x0100 : 0) | 0x0080 | (badVersion ? 0 : options.rcode);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(opt === undefined ? 0 : 1, 10);
  parts.push(header, query.question);
  for (const rr of answers) {
    const head = Buffer.alloc(12);
    head.writeUInt16BE(0xc00c, 0);
    head.writeUInt16BE(rr.type, 2);
    head.writeUInt16BE(CLASS_IN, 4);
    head.writeUInt32BE(Math.max(0, Math.min(rr.ttl, 0x7fffffff)), 6);
    head.writeUInt16BE(rr.rdata.length, 10);
    parts.push(head, rr.rdata);
  }
  if (opt !== undefined) parts.push(opt);
  return Buffer.concat(parts);
}

function optRecord(udpSize: number, extendedRcode: number): Buffer {
  const opt = Buffer.alloc(11);
  opt.writeUInt8(0, 0);
  opt.writeUInt16BE(QTYPE.OPT, 1);
  opt.writeUInt16BE(udpSize, 3);
  opt.writeUInt8(extendedRcode, 5);
  // version 0, no flags, no options
  return opt;
}

/** A header-only error response, for a query whose question could not be read. */
export function buildHeaderOnlyResponse(header: NonNullable<QueryRejection["header"]>): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(header.id, 0);
  out.writeUInt16BE(0x8000 | (header.recursionDesired ? 0x0100 : 0) | 0x0080 | header.rcode, 2);
  return out;
}

export function ipv4Rdata(address: string): Buffer {
  return Buffer.from(address.split(".").map(Number));
}
