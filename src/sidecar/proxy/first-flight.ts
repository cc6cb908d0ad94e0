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

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"].map((m) => Buffer.from(`${m} `));
const LONGEST_METHOD = Math.max(...METHODS.map((m) => m.length));
const TLS_HANDSHAKE = 0x16;

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
    // Hold bytes until they either spell "METHOD " or cannot; a handful of bytes at most.
    const seen = this.prefix.length === 0 ? chunk : Buffer.concat([this.prefix, chunk]);
    const head = seen.subarray(0, LONGEST_METHOD);
    let possible = false;
    for (const m of METHODS) {
      const n = Math.min(m.length, head.length);
      if (head.subarray(0, n).equals(m.subarray(0, n))) {
        if (head.length >= m.length) {
          this.http = new HttpHeadParser(this.options.maxHeadBytes);
          this.prefix = Buffer.alloc(0);
          return this.fromHttp(this.http.push(seen));
        }
        possible = true;
      }
    }
    if (!possible) return { kind: "opaque" };
    this.prefix = seen;
    return undefined;
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
