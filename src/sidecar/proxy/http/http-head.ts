/**
 * HTTP/1.x message heads, read strictly: the request heads a client sends and the response
 * heads an upstream answers with. One incremental scanner finds the end of a head (CRLF
 * CRLF) within a bound; the parsers then read the start line and every field. A bare LF, a
 * folded line, a control character, a space before the colon or a duplicate Host is
 * malformed, because two parsers that disagree on such input are how request smuggling
 * works. Pure: no I/O.
 */
export interface HttpHead {
  readonly method: string;
  readonly target: string;
  readonly version: "1.0" | "1.1";
  /** The Host header value, trimmed; absent when the request has none (or an empty one). */
  readonly host?: string;
  /** Every field as [name, value, name, value, ...], in the client's order and spelling; values trimmed. */
  readonly rawHeaders: readonly string[];
  /** Bytes up to and including the blank line. */
  readonly headBytes: number;
}

export interface ResponseHead {
  readonly version: "1.0" | "1.1";
  readonly status: number;
  readonly reason: string;
  readonly rawHeaders: readonly string[];
  readonly headBytes: number;
}

export type HttpHeadErrorReason = "too-large" | "malformed";

export type HeadResult<H> =
  | { readonly kind: "need-more" }
  | { readonly kind: "done"; readonly head: H }
  | { readonly kind: "error"; readonly reason: HttpHeadErrorReason };

export type HttpHeadResult = HeadResult<HttpHead>;

export const DEFAULT_MAX_HEAD_BYTES = 16 * 1024;

const NEED_MORE = { kind: "need-more" } as const;
const MALFORMED = { kind: "error", reason: "malformed" } as const;
const TOO_LARGE = { kind: "error", reason: "too-large" } as const;
const TERMINATOR = Buffer.from("\r\n\r\n");

const METHOD = /^[A-Z]{1,20}$/;
const TARGET = /^[\x21-\x7e]+$/;
const VERSION = /^HTTP\/1\.([01])$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab; never CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// reg-name, IPv4, [IPv6] and an optional port: nothing that could smuggle a second authority.
const HOST_VALUE = /^[A-Za-z0-9._~!$&'()*+,;=:[\]%-]*$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2}) ?([\t\x20-\x7e\x80-\xff]*)$/;

/**
 * Finds where a head ends, however the bytes arrive. `push` returns the head's text (without
 * the blank line), its length in bytes, and every byte pushed so far joined (the head and
 * whatever followed it). Work stays linear even when a client sends one byte at a time.
 */
export class HeadScanner {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private tail: Buffer = Buffer.alloc(0);
  private lastByte = -1;
  private failed: { readonly kind: "error"; readonly reason: HttpHeadErrorReason } | undefined;

  constructor(private readonly maxBytes = DEFAULT_MAX_HEAD_BYTES) {}

  push(chunk: Buffer): { readonly kind: "need-more" } | { readonly kind: "error"; readonly reason: HttpHeadErrorReason } | { readonly kind: "done"; readonly text: string; readonly headBytes: number; readonly all: Buffer } {
    if (this.failed !== undefined) return this.failed;
    const before = this.size;
    const window = before === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const hit = window.indexOf(TERMINATOR);
    const headEndInChunk = hit === -1 ? chunk.length : hit + TERMINATOR.length - (window.length - chunk.length);
    // A bare LF ends a line for some servers and not for others: refused outright, even before
    // the head is complete (it would never complete for a parser that waits for CRLF CRLF).
    // Only the head's bytes are looked at: a body may hold any byte.
    for (let i = chunk.indexOf(0x0a); i !== -1 && i < headEndInChunk; i = chunk.indexOf(0x0a, i + 1)) {
      if ((i === 0 ? this.lastByte : chunk[i - 1]) !== 0x0d) return (this.failed = MALFORMED);
    }
    this.lastByte = chunk[chunk.length - 1] ?? this.lastByte;
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (hit === -1) {
      this.tail = window.subarray(Math.max(0, window.length - 3));
      if (this.size > this.maxBytes) this.failed = TOO_LARGE;
      return this.failed ?? NEED_MORE;
    }
    const headBytes = before - (window.length - chunk.length) + hit + TERMINATOR.length;
    if (headBytes > this.maxBytes) return (this.failed = TOO_LARGE);
    const all = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.size);
    return { kind: "done", text: all.toString("latin1", 0, headBytes - TERMINATOR.length), headBytes, all };
  }
}

/** A request head, pushed chunk by chunk. Never consumes: the caller slices at `headBytes`. */
export class HttpHeadParser {
  private readonly scanner: HeadScanner;
  private result: HttpHeadResult = NEED_MORE;
  /** Every byte pushed, once the head is done (the head and what followed it). */
  all: Buffer | undefined;

  constructor(maxBytes = DEFAULT_MAX_HEAD_BYTES) {
    this.scanner = new HeadScanner(maxBytes);
  }

  push(chunk: Buffer): HttpHeadResult {
    if (this.result.kind !== "need-more") return this.result;
    const s = this.scanner.push(chunk);
    if (s.kind !== "done") return (this.result = s);
    this.all = s.all;
    return (this.result = parseRequestHead(s.text, s.headBytes));
  }
}

/** Convenience for a complete buffer. */
export function parseHttpHead(bytes: Buffer, maxBytes = DEFAULT_MAX_HEAD_BYTES): HttpHeadResult {
  return new HttpHeadParser(maxBytes).push(bytes);
}

/** A response head, pushed chunk by chunk. */
export class ResponseHeadParser {
  private readonly scanner: HeadScanner;
  all: Buffer | undefined;

  constructor(maxBytes = 64 * 1024) {
    this.scanner = new HeadScanner(maxBytes);
  }

  push(chunk: Buffer): HeadResult<ResponseHead> {
    const s = this.scanner.push(chunk);
    if (s.kind !== "done") return s;
    this.all = s.all;
    const lines = s.text.split("\r\n");
    const m = STATUS_LINE.exec(lines[0] ?? "");
    const rawHeaders = m === null ? undefined : fields(lines);
    if (m === null || rawHeaders === undefined) return MALFORMED;
    return { kind: "done", head: { version: m[1] === "0" ? "1.0" : "1.1", status: Number(m[2]), reason: m[3]!, rawHeaders, headBytes: s.headBytes } };
  }
}

function parseRequestHead(text: string, headBytes: number): HttpHeadResult {
  const lines = text.split("\r\n");
  const parts = (lines[0] ?? "").split(" ");
  if (parts.length !== 3) return MALFORMED;
  const [method, target, version] = parts as [string, string, string];
  const v = VERSION.exec(version);
  if (!METHOD.test(method) || !TARGET.test(target) || v === null) return MALFORMED;
  const rawHeaders = fields(lines);
  if (rawHeaders === undefined) return MALFORMED;

  let host: string | undefined;
  let hostSeen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 4 || name.toLowerCase() !== "host") continue;
    const value = rawHeaders[i + 1]!;
    // CONNECT names its destination in the request target (decided there); Host is not used.
    if (hostSeen || (method !== "CONNECT" && !HOST_VALUE.test(value))) return MALFORMED;
    hostSeen = true;
    if (value.length > 0) host = value;
  }
  const head: HttpHead = {
    method,
    target,
    version: v[1] === "0" ? "1.0" : "1.1",
    ...(host !== undefined ? { host } : {}),
    rawHeaders,
    headBytes,
  };
  return { kind: "done", head };
}

/** The field lines after the start line as raw pairs, or undefined when one is malformed. */
function fields(lines: readonly string[]): string[] | undefined {
  const out: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A bare CR inside a line, or an obs-fold continuation, is refused outright.
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09 || line.includes("\r")) return undefined;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon);
    const value = trimOws(line.slice(colon + 1));
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return undefined;
    out.push(name, value);
  }
  return out;
}

/** Strips optional whitespace (space and tab only: obs-text such as 0xA0 is part of the value). */
function trimOws(v: string): string {
  let start = 0;
  let end = v.length;
  while (start < end && (v.charCodeAt(start) === 0x20 || v.charCodeAt(start) === 0x09)) start++;
  while (end > start && (v.charCodeAt(end - 1) === 0x20 || v.charCodeAt(end - 1) === 0x09)) end--;
  return start === 0 && end === v.length ? v : v.slice(start, end);
}

/** The first value of a field (any spelling of its name), or undefined. */
export function headerValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length === lowerName.length && key.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}
