import { ClientHelloParser, clientHelloInputLimit, type ClientHelloInfo } from "./client-hello.js";
import { HttpHeadParser, type HttpHead } from "./http/http-head.js";

/**
 * Classifies the first bytes a client sends on a connection: a TLS ClientHello (0x16), an
 * HTTP/1.x request head (a known method and a space), or something opaque that carries no
 * name. Pure and incremental; it drives one of the two parsers and keeps nothing itself.
 */
export type FirstFlight =
  | ({ readonly kind: "tls" } & ClientHelloInfo)
  | { readonly kind: "http"; readonly head: HttpHead }
  | { readonly kind: "opaque" }
  | { readonly kind: "invalid"; readonly reason: FirstFlightInvalid; readonly detail: string };

export type FirstFlightInvalid = "malformed-client-hello" | "malformed-request" | "header-too-large";

const TLS_HANDSHAKE = 0x16;
const CR = 0x0d;
const LF = 0x0a;
/**
 * A request line as any HTTP/1 server would take it: a method token (any, not only the common
 * ones: llhttp serves PROPFIND and friends), a target and a version. Leading empty lines are
 * skipped, as servers do. Anything a server would read as a request must be decided as one:
 * bytes let through as "opaque" are spliced to the port's owner undecided.
 */
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} [^ ]+ HTTP\/\d+(\.\d+)?\r?$/;
/** Printable text, as a request line is while it arrives. */
const TEXT_SO_FAR = /^[\x20-\x7e\t\r]*$/;
/** Longest request line waited for; a line this long without its end is not a protocol we route blind. */
const MAX_LINE = 8 * 1024;
/** Empty lines tolerated before the request line. */
const MAX_LEADING_EMPTY = 16;

export interface FirstFlightOptions {
  readonly maxHeadBytes: number;
  /** Whether an HTTP head is recognised (inside a CONNECT tunnel only TLS matters). */
  readonly http?: boolean;
}

export class FirstFlightSniffer {
  private tls: ClientHelloParser | undefined;
  private http: HttpHeadParser | undefined;
  private prefix: Buffer = Buffer.alloc(0);
  /** The most bytes this sniffer can need before it answers. */
  readonly inputLimit: number;

  constructor(private readonly options: FirstFlightOptions) {
    this.inputLimit = Math.max(clientHelloInputLimit(options.maxHeadBytes), options.maxHeadBytes + 1);
  }

  /** Which parser the bytes so far committed to; used to name a truncated or slow first flight. */
  get started(): "tls" | "http" | undefined {
    return this.tls !== undefined ? "tls" : this.http !== undefined ? "http" : undefined;
  }

  /** Feed bytes; undefined means "need more". */
  push(chunk: Buffer): FirstFlight | undefined {
    if (this.tls !== undefined) return this.fromTls(this.tls.push(chunk));
    if (this.http !== undefined) return this.fromHttp(this.http.push(chunk));
    if (chunk.length === 0) return undefined;
    if (this.prefix.length === 0 && chunk[0] === TLS_HANDSHAKE) {
      this.tls = new ClientHelloParser(this.options.maxHeadBytes);
      return this.fromTls(this.tls.push(chunk));
    }
    if (this.options.http === false) return { kind: "opaque" };
    // Hold bytes until the first line is whole: a request line means HTTP, anything else is opaque.
    const seen = this.prefix.length === 0 ? chunk : Buffer.concat([this.prefix, chunk]);
    let start = 0;
    while (start < seen.length && (seen[start] === CR || seen[start] === LF)) start++;
    if (start > MAX_LEADING_EMPTY) return { kind: "invalid", reason: "malformed-request", detail: "empty lines before any request" };
    const lf = seen.indexOf(LF, start);
    const maxLine = Math.min(MAX_LINE, this.options.maxHeadBytes);
    const line = seen.toString("latin1", start, lf === -1 ? Math.min(seen.length, start + maxLine + 1) : lf);
    if (lf === -1) {
      if (!TEXT_SO_FAR.test(line)) return { kind: "opaque" };
      if (line.length > maxLine) return /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} /.test(line) ? { kind: "invalid", reason: "header-too-large", detail: "request line" } : { kind: "opaque" };
      this.prefix = seen;
      return undefined;
    }
    if (!REQUEST_LINE.test(line)) return { kind: "opaque" };
    this.http = new HttpHeadParser(this.options.maxHeadBytes);
    this.prefix = Buffer.alloc(0);
    return this.fromHttp(this.http.push(seen.subarray(start)));
  }

  private fromTls(r: ReturnType<ClientHelloParser["push"]>): FirstFlight | undefined {
    if (r.kind === "need-more") return undefined;
    if (r.kind === "error") return { kind: "invalid", reason: "malformed-client-hello", detail: r.reason };
    return { kind: "tls", ...(r.sni !== undefined ? { sni: r.sni } : {}), ...(r.alpn !== undefined ? { alpn: r.alpn } : {}) };
  }

  private fromHttp(r: ReturnType<HttpHeadParser["push"]>): FirstFlight | undefined {
    if (r.kind === "need-more") return undefined;
    if (r.kind === "done") return { kind: "http", head: r.head };
    return r.reason === "too-large"
      ? { kind: "invalid", reason: "header-too-large", detail: r.reason }
      : { kind: "invalid", reason: "malformed-request", detail: r.reason };
  }
}
