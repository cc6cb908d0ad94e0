import type { Socket } from "node:net";
import type { SidecarContext } from "../../sidecar-context.js";
import { clientOf, emitEgress, newAttempt } from "../egress-event.js";
import { endConnection, httpResponse } from "../http-reply.js";
import { ChunkedDecoder, requestFraming, type BodyFraming } from "./body-framing.js";
import { DEFAULT_MAX_HEAD_BYTES, headerValue, HttpHeadParser, type HttpHead } from "./http-head.js";
import type { ForwardPath, HttpForwarder } from "./http-forwarder.js";
import type { RequestOrigin } from "./request-target.js";
import type { BodyPrefix } from "./request-body.js";

/**
 * One client connection that speaks HTTP/1.1 to the sidecar, on any path: the explicit proxy,
 * a transparent port whose first flight was an HTTP head, plaintext inside a CONNECT tunnel,
 * or TLS the sidecar terminated. Requests are read one after another (keep-alive and
 * pipelined alike) with the sidecar's own framing (http-head.ts, body-framing.ts), and each
 * is handed to the forwarder, which decides it and answers it before the next one is read.
 * Once a request is refused or malformed the connection ends: nothing after it is forwarded.
 */
export interface SessionOptions {
  readonly ctx: SidecarContext;
  readonly forwarder: HttpForwarder;
  readonly maxHeadBytes?: number;
  /** How long a client may take to send a request head. Default 10000. */
  readonly headersTimeoutMs?: number;
  /** Idle keep-alive connections close after this long. Default 30000. */
  readonly keepAliveTimeoutMs?: number;
  /** Every connection's handling, so the owner can wait for it when it closes. */
  readonly track: (work: Promise<void>, onFailure: () => void) => void;
  /** The explicit proxy's CONNECT: the session ends and the socket (with what followed the head) is handed over. */
  readonly onConnect?: (head: HttpHead, socket: Socket, rest: Buffer) => void;
}

/** A request as the forwarder sees it. */
export interface HttpRequest {
  readonly head: HttpHead;
  readonly framing: BodyFraming;
  readonly body: RequestBody;
  readonly client: Socket;
  /** Whether the client may send another request on this connection after this response. */
  readonly keepAlive: boolean;
}

/** The request's body, decoded, read from the client on demand. */
export interface RequestBody {
  /** Reads until more than `max` bytes or the end; undefined when the client left or the framing broke (answered). */
  readPrefix(max: number): Promise<BodyPrefix | undefined>;
  /** Hands the rest of the body to `sink` (false: wait for `drain`); true once it ended, false when cut. */
  pipe(sink: (data: Buffer) => boolean, drain: () => Promise<void>): Promise<boolean>;
  /** Every byte of the body was read. */
  readonly complete: boolean;
}

const BUFFER_HIGH_WATER = 256 * 1024;

/** The sessions of one listener: adoption, and closing them together. */
export class HttpSessions {
  private readonly live = new Set<HttpSession>();
  private draining = false;

  constructor(private readonly options: SessionOptions) {}

  /** Takes over `socket`; `bytes` were already read from it. */
  adopt(socket: Socket, bytes: Buffer, origin: RequestOrigin, path: ForwardPath): void {
    if (this.draining) return void socket.destroy();
    const session = new HttpSession(this.options, socket, origin, path, () => this.draining);
    this.live.add(session);
    this.options.track(
      session.run(bytes).finally(() => this.live.delete(session)),
      () => socket.destroy(),
    );
  }

  /** Closes sessions that sit idle between requests. */
  closeIdle(): void {
    for (const s of this.live) s.closeIfIdle();
  }

  /** From now on each connection closes after its response; idle ones close now. */
  close(): void {
    this.draining = true;
    this.closeIdle();
  }

  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }
}

class HttpSession {
  private readonly ctx: SidecarContext;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  private idle = false;
  /** The session let go of the socket (closed, answered, or handed over). */
  private stopped = false;
  /** CONNECT or an upgrade took the socket over. */
  private handedOver = false;
  /** When the wait for the current head ends (performance.now()); 0: nothing is waited for. */
  private deadline = 0;
  private expired = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = 0;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= BUFFER_HIGH_WATER) this.socket.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(
    private readonly options: SessionOptions,
    private readonly socket: Socket,
    private readonly origin: RequestOrigin,
    private readonly path: ForwardPath,
    private readonly draining: () => boolean,
  ) {
    this.ctx = options.ctx;
  }

  async run(initial: Buffer): Promise<void> {
    const socket = this.socket;
    if (initial.length > 0) this.onData(initial);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
    socket.on("error", () => undefined);
    socket.setNoDelay(true);
    socket.resume();
    let first = true;
    try {
      for (;;) {
        const head = await this.readHead(first);
        first = false;
        if (head === undefined) return;
        // A response that ends the connection (Connection: close, a refusal, an upstream that
        // delimits by closing): the client reads its end once every byte of it was written.
        if (!(await this.serve(head))) return this.handedOver ? undefined : this.finish();
        if (this.draining() || socket.destroyed) return this.finish();
      }
    } finally {
      this.detach();
    }
  }

  closeIfIdle(): void {
    if (this.idle && this.buffered === 0) this.finish();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** One request: framed, then forwarded (or refused). True when the connection carries on. */
  private async serve(head: HttpHead): Promise<boolean> {
    const framing = requestFraming(head.rawHeaders, head.version);
    if (framing === undefined) return this.malformed(400);
    if (head.method === "CONNECT") {
      if (this.options.onConnect === undefined) return this.malformed(400);
      const rest = this.takeAll();
      this.detach();
      this.handedOver = true;
      this.options.onConnect(head, this.socket, rest);
      return false;
    }
    const connection = headerValue(head.rawHeaders, "connection")?.toLowerCase() ?? "";
    const keepAlive = head.version === "1.1" ? !/(^|[\s,])close($|[\s,])/.test(connection) : false;
    if (framing.kind === "none" && headerValue(head.rawHeaders, "upgrade") !== undefined && /(^|[\s,])upgrade($|[\s,])/.test(connection)) {
      const rest = this.takeAll();
      this.detach();
      this.handedOver = true;
      await this.options.forwarder.handleUpgrade(head, this.socket, rest, this.origin, this.path);
      return false;
    }
    const body = new SessionBody(this, framing);
    const carryOn = await this.options.forwarder.handle({ head, framing, body, client: this.socket, keepAlive: keepAlive && !this.draining() }, this.origin, this.path);
    return carryOn && keepAlive && body.complete && !this.socket.destroyed;
  }

  /** The next request head, or undefined when the connection ended (answered, if it had to be). */
  private async readHead(first: boolean): Promise<HttpHead | undefined> {
    const parser = new HttpHeadParser(this.options.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES);
    const headersTimeout = this.options.headersTimeoutMs ?? 10_000;
    let started = first;
    this.arm(started ? headersTimeout : (this.options.keepAliveTimeoutMs ?? 30_000));
    try {
      for (;;) {
        const chunk = this.takeAll();
        if (chunk.length > 0) {
          this.idle = false;
          const r = parser.push(chunk);
          if (r.kind === "done") {
            const rest = parser.all!.subarray(r.head.headBytes);
            if (rest.length > 0) this.unshift(rest);
            return r.head;
          }
          if (r.kind === "error") return void this.malformed(r.reason === "too-large" ? 431 : 400);
          // A head that came in part: from its first byte it has headersTimeout to be whole.
          if (!started) {
            started = true;
            this.arm(headersTimeout);
          }
          continue;
        }
        if (this.stopped) return undefined;
        if (this.expired && started) return void this.answer(408);
        if (this.expired || this.ended || this.socket.destroyed) {
          // A client that said all it had to say (or went quiet) gets a plain close.
          if (started) return void this.malformed(400);
          return void this.finish();
        }
        this.idle = !started;
        if (this.idle && this.draining()) return void this.finish();
        await this.more();
      }
    } finally {
      this.deadline = 0;
      this.idle = false;
    }
  }

  /**
   * Sets the wait for a head to end `ms` from now. One timer per connection, not one per
   * request: it is made only when none is pending, and when it fires before the deadline
   * (which moved later meanwhile) it waits out the rest.
   */
  private arm(ms: number): void {
    this.expired = false;
    const now = performance.now();
    this.deadline = now + ms;
    if (this.timer !== undefined && this.timerDue <= this.deadline) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = this.deadline;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.deadline === 0) return;
    const left = this.deadline - performance.now();
    if (left >= 1) {
      this.timerDue = this.deadline;
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    this.deadline = 0;
    this.expired = true;
    this.notify();
  };

  /** A request the sidecar cannot read: an event, a status, and the connection closed. */
  malformed(status: 400 | 431): false {
    const facts = newAttempt(this.ctx, this.path, "http", clientOf(this.socket));
    const reasons = status === 431 ? (["header-too-large"] as const) : (["malformed-request"] as const);
    emitEgress(this.ctx, facts, { verdict: "block", reasons });
    return this.answer(status);
  }

  /** The client's side ended inside a request: answered as malformed while it can still read. */
  cutShort(): void {
    if (!this.stopped && !this.socket.destroyed && this.socket.writable) this.malformed(400);
  }

  private answer(status: number): false {
    this.detach();
    const text = status === 431 ? "request headers too large" : status === 408 ? "request timeout" : "bad request";
    endConnection(this.socket, httpResponse(status, `Hangar: ${text}.`));
    return false;
  }

  private finish(): void {
    this.detach();
    if (!this.socket.writableEnded) endConnection(this.socket);
  }

  private detach(): void {
    this.stopped = true;
    this.deadline = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits for bytes, the end, or a timer. */
  more(): Promise<void> {
    if (this.buffered > 0 || this.ended || this.stopped) return Promise.resolve();
    if (this.socket.isPaused()) this.socket.resume();
    return new Promise((resolve) => (this.wake = resolve));
  }

  get atEnd(): boolean {
    return this.buffered === 0 && (this.ended || this.stopped || this.socket.destroyed);
  }

  /** Every buffered byte, as one buffer (empty when none). */
  takeAll(): Buffer {
    const chunks = this.chunks;
    if (chunks.length === 0) return EMPTY;
    const out = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    if (this.socket.isPaused() && !this.socket.destroyed) this.socket.resume();
    return out;
  }

  unshift(bytes: Buffer): void {
    this.chunks.unshift(bytes);
    this.buffered += bytes.length;
  }
}

const EMPTY = Buffer.alloc(0);

/** A request body read from its session, by the framing the head declared. */
class SessionBody implements RequestBody {
  private remaining: number;
  private readonly decoder: ChunkedDecoder | undefined;
  private ended: boolean;

  constructor(
    private readonly session: HttpSession,
    framing: BodyFraming,
  ) {
    this.remaining = framing.kind === "length" ? framing.length : 0;
    this.decoder = framing.kind === "chunked" ? new ChunkedDecoder() : undefined;
    this.ended = framing.kind === "none";
  }

  get complete(): boolean {
    return this.ended;
  }

  async readPrefix(max: number): Promise<BodyPrefix | undefined> {
    const parts: Buffer[] = [];
    let size = 0;
    while (!this.ended && size <= max) {
      const got = await this.next();
      if (got === undefined) return undefined;
      for (const p of got) {
        parts.push(p);
        size += p.length;
      }
    }
    return { bytes: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), truncated: !this.ended };
  }

  async pipe(sink: (data: Buffer) => boolean, drain: () => Promise<void>): Promise<boolean> {
    while (!this.ended) {
      const got = await this.next();
      if (got === undefined) return false;
      let full = false;
      for (const p of got) if (!sink(p)) full = true;
      if (full) await drain();
    }
    return true;
  }

  /** The next run of body bytes (decoded), or undefined when the client left or the framing broke. */
  private async next(): Promise<Buffer[] | undefined> {
    for (;;) {
      const chunk = this.session.takeAll();
      if (chunk.length > 0) return this.decode(chunk);
      if (this.session.atEnd) {
        // The client ended its side before the body it announced: a request cut short.
        this.session.cutShort();
        return undefined;
      }
      await this.session.more();
    }
  }

  private decode(chunk: Buffer): Buffer[] | undefined {
    if (this.decoder === undefined) {
      const take = Math.min(this.remaining, chunk.length);
      if (take < chunk.length) this.session.unshift(chunk.subarray(take));
      this.remaining -= take;
      if (this.remaining === 0) this.ended = true;
      return [chunk.subarray(0, take)];
    }
    const out: Buffer[] = [];
    const used = this.decoder.push(chunk, (d) => out.push(d));
    if (used === -1) {
      this.session.malformed(400);
      return undefined;
    }
    if (this.decoder.done) {
      this.ended = true;
      if (used < chunk.length) this.session.unshift(chunk.subarray(used));
    }
    return out;
  }
}
