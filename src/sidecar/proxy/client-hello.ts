/**
 * An incremental TLS ClientHello parser. Feed it the bytes a client sends, in whatever
 * pieces TCP delivered them; it reassembles the handshake message across segments and
 * across TLS records, and reports the SNI and ALPN. It never consumes: the caller keeps
 * every byte so it can replay them upstream untouched. Pure: no I/O.
 */
export type ClientHelloErrorReason =
  | "not-handshake"
  | "bad-record"
  | "too-many-records"
  | "not-client-hello"
  | "too-large"
  | "bad-length"
  | "duplicate-extension"
  | "bad-server-name"
  | "bad-alpn";

export interface ClientHelloInfo {
  readonly sni?: string;
  readonly alpn?: readonly string[];
}

export type ClientHelloResult =
  | { readonly kind: "need-more" }
  | ({ readonly kind: "done" } & ClientHelloInfo)
  | { readonly kind: "error"; readonly reason: ClientHelloErrorReason };

/** Largest handshake message we reassemble (type + length + body). */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = 16 * 1024;
/** Real clients use one or two records; more is an evasion attempt or garbage. */
export const MAX_CLIENT_HELLO_RECORDS = 64;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const MAX_RECORD_PAYLOAD = 16 * 1024;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/** The most input bytes a parser with this limit can ask for before it answers. */
export function clientHelloInputLimit(maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES): number {
  return maxBytes + (MAX_CLIENT_HELLO_RECORDS + 1) * RECORD_HEADER;
}

const NEED_MORE: ClientHelloResult = { kind: "need-more" };

export class ClientHelloParser {
  private readonly recordHeader = Buffer.alloc(RECORD_HEADER);
  private recordHeaderFill = 0;
  private recordRemaining = 0;
  private records = 0;
  private readonly messageHeader = Buffer.alloc(HANDSHAKE_HEADER);
  private message: Buffer | undefined;
  private messageFill = 0;
  private result: ClientHelloResult = NEED_MORE;

  constructor(private readonly maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES) {}

  push(chunk: Uint8Array): ClientHelloResult {
    if (this.result.kind !== "need-more") return this.result;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.recordRemaining === 0) {
        const take = Math.min(RECORD_HEADER - this.recordHeaderFill, chunk.length - pos);
        this.recordHeader.set(chunk.subarray(pos, pos + take), this.recordHeaderFill);
        this.recordHeaderFill += take;
        pos += take;
        if (this.recordHeaderFill < RECORD_HEADER) break;
        this.recordHeaderFill = 0;
        const bad = this.startRecord();
        if (bad !== undefined) return (this.result = { kind: "error", reason: bad });
        continue;
      }
      const take = Math.min(this.recordRemaining, chunk.length - pos);
      const bad = this.appendHandshake(chunk.subarray(pos, pos + take));
      if (bad !== undefined) return (this.result = { kind: "error", reason: bad });
      this.recordRemaining -= take;
      pos += take;
      if (this.message !== undefined && this.messageFill === this.message.length) {
        // Whatever follows the ClientHello (more records, early data) is not ours to read.
        return (this.result = parseClientHelloBody(this.message.subarray(HANDSHAKE_HEADER)));
      }
    }
    return this.result;
  }

  private startRecord(): ClientHelloErrorReason | undefined {
    const h = this.recordHeader;
    if (h[0] !== CONTENT_HANDSHAKE) return "not-handshake";
    if (h[1] !== 3) return "bad-record";
    const length = h.readUInt16BE(3);
    // Zero-length handshake records are forbidden (RFC 8446 §5.1) and would let a client stall us cheaply.
    if (length === 0 || length > MAX_RECORD_PAYLOAD) return "bad-record";
    if (++this.records > MAX_CLIENT_HELLO_RECORDS) return "too-many-records";
    this.recordRemaining = length;
    return undefined;
  }

  private appendHandshake(bytes: Uint8Array): ClientHelloErrorReason | undefined {
    let pos = 0;
    if (this.message === undefined) {
      const take = Math.min(HANDSHAKE_HEADER - this.messageFill, bytes.length);
      this.messageHeader.set(bytes.subarray(0, take), this.messageFill);
      this.messageFill += take;
      pos = take;
      if (this.messageFill < HANDSHAKE_HEADER) return undefined;
      if (this.messageHeader[0] !== HANDSHAKE_CLIENT_HELLO) return "not-client-hello";
      const bodyLength = this.messageHeader.readUIntBE(1, 3);
      if (HANDSHAKE_HEADER + bodyLength > this.maxBytes) return "too-large";
      this.message = Buffer.allocUnsafe(HANDSHAKE_HEADER + bodyLength);
      this.messageHeader.copy(this.message, 0);
    }
    const take = Math.min(this.message.length - this.messageFill, bytes.length - pos);
    this.message.set(bytes.subarray(pos, pos + take), this.messageFill);
    this.messageFill += take;
    return undefined;
  }
}

/** Convenience for a complete buffer (tests, one-shot callers). */
export function parseClientHello(bytes: Uint8Array, maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  return new ClientHelloParser(maxBytes).push(bytes);
}

class Bounds extends Error {}

/** A cursor that refuses every read past its end. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.end) throw new Bounds();
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** A sub-reader over the next `n` bytes; this reader moves past them. */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  text(n: number): string {
    this.need(n);
    const s = this.buf.toString("latin1", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
}

function parseClientHelloBody(body: Buffer): ClientHelloResult {
  try {
    return readClientHello(new Reader(body, 0, body.length));
  } catch (err) {
    if (err instanceof Bounds) return { kind: "error", reason: "bad-length" };
    throw err;
  }
}

function readClientHello(r: Reader): ClientHelloResult {
  r.skip(2 + 32); // legacy_version, random
  const sessionId = r.u8();
  if (sessionId > 32) return { kind: "error", reason: "bad-length" };
  r.skip(sessionId);
  const suites = r.u16();
  if (suites < 2 || suites % 2 !== 0) return { kind: "error", reason: "bad-length" };
  r.skip(suites);
  const compression = r.u8();
  if (compression < 1) return { kind: "error", reason: "bad-length" };
  r.skip(compression);
  if (r.remaining === 0) return { kind: "done" };
  const extensionsLength = r.u16();
  if (extensionsLength !== r.remaining) return { kind: "error", reason: "bad-length" };

  const seen = new Set<number>();
  let sni: string | undefined;
  let alpn: string[] | undefined;
  while (r.remaining > 0) {
    const type = r.u16();
    const ext = r.sub(r.u16());
    if (seen.has(type)) return { kind: "error", reason: "duplicate-extension" };
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(ext);
      if (name === undefined) return { kind: "error", reason: "bad-server-name" };
      sni = name;
    } else if (type === EXT_ALPN) {
      const protocols = readAlpn(ext);
      if (protocols === undefined) return { kind: "error", reason: "bad-alpn" };
      alpn = protocols;
    }
  }
  return { kind: "done", ...(sni !== undefined ? { sni } : {}), ...(alpn !== undefined ? { alpn } : {}) };
}

const HOST_NAME_BYTES = /^[\x21-\x7e]+$/;

/** server_name_list (RFC 6066 §3): exactly one host_name entry, visible ASCII only. */
function readServerName(r: Reader): string | undefined {
  const listLength = r.u16();
  if (listLength === 0 || listLength !== r.remaining) return undefined;
  let hostName: string | undefined;
  while (r.remaining > 0) {
    const nameType = r.u8();
    const length = r.u16();
    if (length === 0) return undefined;
    const value = r.text(length);
    if (nameType !== 0) continue;
    if (hostName !== undefined || !HOST_NAME_BYTES.test(value)) return undefined;
    hostName = value;
  }
  return hostName;
}

/** protocol_name_list (RFC 7301 §3.1): non-empty, each name non-empty. */
function readAlpn(r: Reader): string[] | undefined {
  const listLength = r.u16();
  if (listLength < 2 || listLength !== r.remaining) return undefined;
  const out: string[] = [];
  while (r.remaining > 0) {
    const length = r.u8();
    if (length === 0) return undefined;
    out.push(r.text(length));
  }
  return out;
}
