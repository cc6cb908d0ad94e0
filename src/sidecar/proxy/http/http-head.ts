/**
 * An incremental HTTP/1.x request-head parser, bounded. It finds the end of the head
 * (CRLF CRLF), then reads the request line and the Host header strictly: a duplicate
 * Host, a folded line or a control character is malformed, because two parsers that
 * disagree on such input are how request smuggling works. Pure: no I/O, never consumes.
 */
export interface HttpHead {
  readonly method: string;
  readonly target: string;
  readonly version: "1.0" | "1.1";
  /** The Host header value, trimmed; absent when the request has none (or an empty one). */
  readonly host?: string;
  /** Bytes up to and including the blank line. */
  readonly headBytes: number;
}

export type HttpHeadErrorReason = "too-large" | "malformed";

export type HttpHeadResult =
  | { readonly kind: "need-more" }
  | { readonly kind: "done"; readonly head: HttpHead }
  | { readonly kind: "error"; readonly reason: HttpHeadErrorReason };

export const DEFAULT_MAX_HEAD_BYTES = 16 * 1024;

const NEED_MORE: HttpHeadResult = { kind: "need-more" };
const MALFORMED: HttpHeadResult = { kind: "error", reason: "malformed" };
const TERMINATOR = Buffer.from("\r\n\r\n");

const METHOD = /^[A-Z]{1,20}$/;
const TARGET = /^[\x21-\x7e]+$/;
const VERSION = /^HTTP\/1\.([01])$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab; never CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// reg-name, IPv4, [IPv6] and an optional port: nothing that could smuggle a second authority.
const HOST_VALUE = /^[A-Za-z0-9._~!$&'()*+,;=:[\]%-]*$/;

export class HttpHeadParser {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private tail: Buffer = Buffer.alloc(0);
  private lastByte = -1;
  private result: HttpHeadResult = NEED_MORE;

  constructor(private readonly maxBytes = DEFAULT_MAX_HEAD_BYTES) {}

  push(chunk: Buffer): HttpHeadResult {
    if (this.result.kind !== "need-more") return this.result;
    // Search the new bytes plus the three before them, and join the chunks only once the
    // head is complete: total work stays linear even when a client sends one byte at a time.
    const before = this.size;
    const window = before === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    // A bare LF ends a line for some servers and not for others: refused outright, even before
    // the head is complete (it would never complete for a parser that waits for CRLF CRLF).
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
      if ((i === 0 ? this.lastByte : chunk[i - 1]) !== 0x0d) return (this.result = MALFORMED);
    }
    this.lastByte = chunk[chunk.length - 1] ?? this.lastByte;
    this.chunks.push(chunk);
    this.size += chunk.length;
    const hit = window.indexOf(TERMINATOR);
    if (hit === -1) {
      this.tail = window.subarray(Math.max(0, window.length - 3));
      if (this.size > this.maxBytes) this.result = { kind: "error", reason: "too-large" };
      return this.result;
    }
    const headBytes = before - (window.length - chunk.length) + hit + TERMINATOR.length;
    if (headBytes > this.maxBytes) return (this.result = { kind: "error", reason: "too-large" });
    const all = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.size);
    return (this.result = parseHead(all.toString("latin1", 0, headBytes - TERMINATOR.length), headBytes));
  }
}

/** Convenience for a complete buffer. */
export function parseHttpHead(bytes: Buffer, maxBytes = DEFAULT_MAX_HEAD_BYTES): HttpHeadResult {
  return new HttpHeadParser(maxBytes).push(bytes);
}

function parseHead(text: string, headBytes: number): HttpHeadResult {
  const lines = text.split("\r\n");
  const requestLine = lines[0] ?? "";
  const parts = requestLine.split(" ");
  if (parts.length !== 3) return MALFORMED;
  const [method, target, version] = parts as [string, string, string];
  const v = VERSION.exec(version);
  if (!METHOD.test(method) || !TARGET.test(target) || v === null) return MALFORMED;

  let host: string | undefined;
  let hostSeen = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A bare CR or LF inside a line, or an obs-fold continuation, is refused outright.
    if (line.includes("\r") || line.includes("\n") || line.startsWith(" ") || line.startsWith("\t")) return MALFORMED;
    const colon = line.indexOf(":");
    if (colon <= 0) return MALFORMED;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return MALFORMED;
    if (name.length === 4 && name.toLowerCase() === "host") {
      if (hostSeen || !HOST_VALUE.test(value)) return MALFORMED;
      hostSeen = true;
      if (value.length > 0) host = value;
    }
  }
  const head: HttpHead = {
    method,
    target,
    version: v[1] === "0" ? "1.0" : "1.1",
    headBytes,
    ...(host !== undefined ? { host } : {}),
  };
  return { kind: "done", head };
}
