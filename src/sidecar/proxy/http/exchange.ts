import type { Socket } from "node:net";
import { ChunkedDecoder, responseFraming, type BodyFraming } from "./body-framing.js";
import { endToEndHeaders } from "./hop-by-hop.js";
import { headerValue, ResponseHeadParser, type ResponseHead } from "./http-head.js";
import type { UpstreamConnection } from "./upstream-pool.js";

/**
 * One request and its response on an upstream connection: the request goes out (head and
 * body read so far in one write, the rest streamed after it), and the response comes back
 * with its framing tracked, not buffered: its head is rewritten (hop-by-hop fields stop here),
 * and its body bytes go to the client as they arrive, until the framing says it ended. Then
 * the connection goes back to the pool when it can carry another request.
 */
export type ExchangeEnd =
  | { readonly kind: "done"; readonly clientKeep: boolean; readonly bytesDown: number }
  /** A reused connection that closed before a byte of answer: nothing reached the client. */
  | { readonly kind: "stale" }
  | { readonly kind: "failed"; readonly error: Error; readonly answered: boolean; readonly bytesDown: number }
  /** The upstream agreed to an upgrade (101): its head, and what followed it. */
  | { readonly kind: "upgraded"; readonly head: ResponseHead; readonly rest: Buffer };

export interface ExchangeOptions {
  readonly conn: UpstreamConnection;
  readonly client: Socket;
  readonly method: string;
  /** The request head, with the body read so far (already framed). */
  readonly head: Buffer;
  /** Streams the rest of the body upstream; false when the client's body was cut. */
  readonly streamRest?: (up: Socket) => Promise<boolean>;
  readonly clientKeepAlive: boolean;
  readonly clientVersion?: "1.0" | "1.1";
  /** A 101 ends the exchange (the caller relays the upgraded connection). */
  readonly upgrade?: boolean;
  /** Takes back a connection that can carry another request. */
  readonly release?: (conn: UpstreamConnection) => void;
}

export function exchange(o: ExchangeOptions): Promise<ExchangeEnd> {
  return new Promise((resolve) => new Exchange(o, resolve).start());
}

class Exchange {
  private readonly up: Socket;
  private readonly client: Socket;
  private parser = new ResponseHeadParser();
  private phase: "head" | "body" | "done" = "head";
  private framing: BodyFraming = { kind: "none" };
  private remaining = 0;
  private decoder: ChunkedDecoder | undefined;
  /** HTTP/1.0 client, chunked response: the body goes on decoded, delimited by the close. */
  private dechunk = false;
  private clientKeep = false;
  private reusable = true;
  private requestSent: boolean;
  private heard = false;
  private headSent = false;
  private bytesDown = 0;
  private waitingDrain = false;
  private settled = false;

  /** Chunks are views into the connection's read buffer, valid during the call unless held. */
  private readonly onChunk = (chunk: Buffer, hold: () => () => void): void => {
    if (this.phase === "body") return this.body(chunk, hold);
    // A head is parsed from a copy: the parser keeps what it is given, and what follows the
    // head (the start of the body) is written from the copy.
    this.data(Buffer.from(chunk));
  };
  private readonly onUpEnd = (): void => this.upstreamEnded(undefined);
  private readonly onUpError = (err: Error): void => this.upstreamEnded(err);
  private readonly onClientClose = (): void => {
    if (this.settled) return;
    this.up.destroy();
    this.settle({ kind: "done", clientKeep: false, bytesDown: this.bytesDown });
  };
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.client.uncork();
  };
  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    if (!this.settled) this.up.resume();
  };

  constructor(
    private readonly o: ExchangeOptions,
    private readonly resolve: (end: ExchangeEnd) => void,
  ) {
    this.up = o.conn.socket;
    this.client = o.client;
    this.requestSent = o.streamRest === undefined;
  }

  start(): void {
    const up = this.up;
    this.o.conn.reader.attach(this.onChunk);
    up.on("end", this.onUpEnd);
    up.on("close", this.onUpEnd);
    up.on("error", this.onUpError);
    this.client.on("close", this.onClientClose);
    // Gone while the upstream connection was being made: nothing to answer, nothing to read.
    if (this.client.destroyed) return this.onClientClose();
    up.write(this.o.head);
    if (up.isPaused()) up.resume();
    const rest = this.o.streamRest;
    if (rest !== undefined) {
      void rest(up).then((ok) => {
        if (ok) this.requestSent = true;
        else if (!this.settled) {
          // The client's body was cut short: the upstream got part of a request, and this
          // connection can carry nothing more.
          up.destroy();
          this.settle({ kind: "failed", error: new Error("the client's request body was cut short"), answered: this.headSent, bytesDown: this.bytesDown });
        }
      });
    }
  }

  private data(chunk: Buffer): void {
    if (this.settled) return;
    this.heard = true;
    if (this.phase === "body") return this.body(chunk);
    if (this.phase === "done") return;
    const r = this.parser.push(chunk);
    if (r.kind === "need-more") return;
    if (r.kind === "error") return this.fail(new Error(r.reason === "too-large" ? "the upstream's response head is too large" : "the upstream's response head is malformed"));
    const head = r.head;
    const rest = this.parser.all!.subarray(head.headBytes);
    if (head.status === 101) {
      if (this.o.upgrade !== true) return this.fail(new Error("the upstream switched protocols unasked"));
      this.detach();
      return this.settle({ kind: "upgraded", head, rest });
    }
    if (head.status < 200) {
      // An interim answer (100 Continue, 103 Early Hints): the sidecar sent the body already.
      this.parser = new ResponseHeadParser();
      if (rest.length > 0) this.data(rest);
      return;
    }
    const framing = responseFraming(head.status, head.rawHeaders, this.o.method);
    if (framing === undefined) return this.fail(new Error("the upstream's response framing is ambiguous (Content-Length)"));
    this.framing = framing;
    this.dechunk = framing.kind === "chunked" && this.o.clientVersion === "1.0";
    this.clientKeep = this.o.clientKeepAlive && framing.kind !== "close" && !this.dechunk && this.o.upgrade !== true;
    if (head.version !== "1.1" || /(^|[\s,])close($|[\s,])/i.test(headerValue(head.rawHeaders, "connection") ?? "")) this.reusable = false;
    this.remaining = framing.kind === "length" ? framing.length : 0;
    if (framing.kind === "chunked") this.decoder = new ChunkedDecoder();
    this.phase = "body";
    const headText = this.responseHead(head);
    const whole = framing.kind === "none" ? 0 : framing.kind === "length" && rest.length >= framing.length ? framing.length : -1;
    if (whole >= 0) {
      // The whole response came in one read (most small ones): head and body leave in one
      // write, at once, with nothing corked and no turn waited for.
      const out = Buffer.allocUnsafe(headText.length + whole);
      out.write(headText, 0, "latin1");
      rest.copy(out, headText.length, 0, whole);
      this.headSent = true;
      this.remaining = 0;
      this.bytesDown = whole;
      if (rest.length > whole) this.reusable = false;
      this.client.write(out);
      return this.complete();
    }
    this.corkTurn();
    this.client.write(headText, "latin1");
    this.headSent = true;
    if (rest.length > 0) this.body(rest);
  }

  private responseHead(head: ResponseHead): string {
    let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
    const headers = endToEndHeaders(head.rawHeaders);
    const chunked = this.framing.kind === "chunked";
    for (let i = 0; i + 1 < headers.length; i += 2) {
      // Transfer-Encoding wins over Content-Length (RFC 9112 6.3): the length is not passed on.
      if (chunked && headers[i]!.length === 14 && headers[i]!.toLowerCase() === "content-length") continue;
      text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    if (chunked && !this.dechunk) text += "Transfer-Encoding: chunked\r\n";
    if (!this.clientKeep) text += "Connection: close\r\n";
    return `${text}\r\n`;
  }

  private body(chunk: Buffer, hold?: () => () => void): void {
    switch (this.framing.kind) {
      case "length": {
        const take = Math.min(this.remaining, chunk.length);
        if (take < chunk.length) this.reusable = false;
        this.remaining -= take;
        this.bytesDown += take;
        this.write(take === chunk.length ? chunk : chunk.subarray(0, take), hold);
        if (this.remaining === 0) this.complete();
        return;
      }
      case "chunked": {
        const decoder = this.decoder!;
        const used = this.dechunk ? decoder.push(chunk, (d) => this.write(d, hold)) : decoder.push(chunk);
        if (used === -1) return this.fail(new Error("the upstream's chunked framing is malformed"));
        if (!this.dechunk) this.write(used === chunk.length ? chunk : chunk.subarray(0, used), hold);
        this.bytesDown = decoder.dataBytes;
        if (decoder.done) {
          if (used < chunk.length) this.reusable = false;
          this.complete();
        }
        return;
      }
      default:
        this.bytesDown += chunk.length;
        this.write(chunk, hold);
    }
  }

  /** `hold`: the bytes are a view into the read buffer, held until written out. */
  private write(bytes: Buffer, hold?: () => () => void): void {
    if (bytes.length === 0) return;
    this.corkTurn();
    const ok = hold === undefined ? this.client.write(bytes) : this.client.write(bytes, hold());
    if (ok || this.waitingDrain) return;
    this.waitingDrain = true;
    this.up.pause();
    this.client.once("drain", this.onDrain);
  }

  /**
   * What is written to the client in this turn leaves in one write once the turn's I/O is
   * done: the head with the start of the body, and a burst of body reads (a TLS read yields
   * one 16 KiB record per callback).
   */
  private corkTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.client.cork();
    setImmediate(this.uncork);
  }

  private upstreamEnded(err: Error | undefined): void {
    if (this.settled) return;
    if (this.phase === "body" && this.framing.kind === "close" && err === undefined) {
      this.reusable = false;
      return this.complete();
    }
    if (!this.heard && !this.headSent && this.o.conn.reused) {
      this.detach();
      this.up.destroy();
      return this.settle({ kind: "stale" });
    }
    this.fail(err ?? new Error("the upstream closed the connection before the response ended"));
  }

  private complete(): void {
    this.phase = "done";
    this.detach();
    if (this.reusable && this.requestSent && this.o.release !== undefined && !this.up.destroyed) this.o.release(this.o.conn);
    else this.up.destroy();
    this.settle({ kind: "done", clientKeep: this.clientKeep, bytesDown: this.bytesDown });
  }

  private fail(error: Error): void {
    this.detach();
    this.up.destroy();
    this.settle({ kind: "failed", error, answered: this.headSent, bytesDown: this.bytesDown });
  }

  private detach(): void {
    const up = this.up;
    this.o.conn.reader.attach(undefined);
    up.off("end", this.onUpEnd);
    up.off("close", this.onUpEnd);
    up.off("error", this.onUpError);
    this.client.off("close", this.onClientClose);
    this.client.off("drain", this.onDrain);
    if (this.waitingDrain) up.resume();
    this.waitingDrain = false;
  }

  private settle(end: ExchangeEnd): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(end);
  }
}
