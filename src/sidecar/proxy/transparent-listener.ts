import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { permits, type Verdict } from "../../core/decision.js";
import { HangarError } from "../../core/errors.js";
import { bindServer, boundAddress, stopAccepting } from "./bind-server.js";
import type { SidecarContext } from "../sidecar-context.js";
import { ConnectionBudget, type Admission } from "./connection-budget.js";
import { ConnectionRate } from "./connection-rate.js";
import { ConnectionSet } from "./connection-set.js";
import { dial, type Upstream } from "./dial.js";
import { EgressGate } from "./egress-gate.js";
import { clientOf, egressEvent, emitEgress, newAttempt, type AttemptFacts } from "./egress-event.js";
import { FirstFlightSniffer, type FirstFlight } from "./first-flight.js";
import { HttpForwarder } from "./http/http-forwarder.js";
import { DEFAULT_MAX_HEAD_BYTES } from "./http/http-head.js";
import { HttpSessions } from "./http/http-session.js";
import { endConnection, httpResponse } from "./http-reply.js";
import { peek } from "./peek.js";
import { refusalHeaders, refusalText } from "./refusal.js";
import { closeVerdict, DEFAULT_SPLICE_IDLE_TIMEOUT_MS, splice } from "./splice.js";
import { inspectConnection } from "./tls/inspect-connection.js";
import type { TlsInspection } from "./tls/tls-terminator.js";

/**
 * The transparent path: one listener per declared port. A sandboxed client reached us
 * because our DNS answered a declared name with the sidecar's address; we learn the name
 * from the TLS SNI or the HTTP Host (or, for protocols that carry none, from the port's
 * single owner), decide, resolve the name ourselves and splice to the address WE resolved.
 */
export interface TransparentListenerOptions {
  readonly ctx: SidecarContext;
  /** Address to listen on (the sidecar's internal address). */
  readonly host: string;
  /** Port to listen on; 0 picks a free one (tests). */
  readonly listenPort: number;
  /** The policy port this listener stands for: the port decided on and dialled upstream. */
  readonly declaredPort: number;
  /** How long to wait for a first flight; silence this long means a server-first protocol. Default 2000. */
  readonly peekTimeoutMs?: number;
  /** Largest HTTP head or ClientHello accepted. Default 16 KiB. */
  readonly maxHeadBytes?: number;
  /** Upstream connect timeout. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Share one counter across listeners so a destination's rate is counted once. */
  readonly rate?: ConnectionRate;
  /** The sandbox CA and upstream trust, for rules that say `inspect: true`. */
  readonly inspection?: TlsInspection;
  /** Shared by every listener so the cap counts the whole sidecar. Default: this listener's own, at the default cap. */
  readonly budget?: ConnectionBudget;
  /** A spliced connection without a byte either way this long is cut. Default 5 minutes. */
  readonly idleTimeoutMs?: number;
}

type State = "idle" | "listening" | "closing";

export class TransparentListener implements AsyncDisposable {
  private readonly ctx: SidecarContext;
  private readonly server: Server;
  private readonly gate: EgressGate;
  private readonly forwarder: HttpForwarder;
  private readonly http: HttpSessions;
  private readonly sockets = new ConnectionSet();
  private readonly handlers = new Set<Promise<void>>();
  private readonly peekTimeoutMs: number;
  private readonly maxHeadBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly budget: ConnectionBudget;
  private readonly idleTimeoutMs: number;
  private state: State = "idle";
  private closed: Promise<void> | undefined;

  constructor(private readonly options: TransparentListenerOptions) {
    this.ctx = options.ctx;
    this.peekTimeoutMs = options.peekTimeoutMs ?? 2000;
    this.maxHeadBytes = options.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.budget = options.budget ?? new ConnectionBudget({ now: () => this.ctx.now() });
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_SPLICE_IDLE_TIMEOUT_MS;
    this.gate = new EgressGate(this.ctx, options.rate ?? new ConnectionRate(() => this.ctx.now()));
    this.forwarder = new HttpForwarder(this.ctx, this.gate, options.inspection?.upstreamCa, this.connectTimeoutMs);
    this.http = new HttpSessions({ ctx: this.ctx, forwarder: this.forwarder, maxHeadBytes: this.maxHeadBytes, track: (work, onFailure) => this.track(work, onFailure) });
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => this.onConnection(s));
    this.server.on("error", (err) => this.ctx.logger.error({ err, port: options.declaredPort }, "transparent listener error"));
  }

  get declaredPort(): number {
    return this.options.declaredPort;
  }

  /** Sockets open right now (clients and upstreams). */
  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<AddressInfo> {
    if (this.state === "closing") throw new HangarError("HANGAR_CLOSED", "transparent listener is closed", { data: { port: this.options.declaredPort } });
    if (this.state === "listening") return this.address()!;
    this.state = "listening";
    await bindServer(this.server, this.options.host, this.options.listenPort).catch((err: unknown) => {
      this.state = "idle";
      throw err;
    });
    return this.address()!;
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Stops accepting, lets live connections finish, resolves when the last one has closed. Idempotent. */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    const wasListening = this.state === "listening";
    this.state = "closing";
    const serverClosed = stopAccepting(this.server, wasListening);
    this.http.close();
    this.closed = Promise.all([serverClosed, this.sockets.drained(), ...this.handlers]).then(() => this.forwarder.destroy());
    return this.closed;
  }

  /** Closes and destroys every live connection now. */
  async destroy(): Promise<void> {
    const closing = this.close();
    this.http.destroyAll();
    this.sockets.destroyAll();
    await closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A connection to `port` that reached the sidecar some other way (the catch-all listener,
   * which learnt the port from the redirect), handled exactly as if it had come in here.
   */
  adopt(socket: Socket, port: number): void {
    if (this.state === "closing") return void socket.destroy();
    this.admit(socket, port);
  }

  private onConnection(socket: Socket): void {
    if (this.state !== "listening") {
      socket.destroy();
      return;
    }
    this.admit(socket, this.options.declaredPort);
  }

  private admit(socket: Socket, port: number): void {
    // Refused before a byte is read: a flood costs a counter check and, rate-limited, an event.
    const admission = this.budget.admit(socket);
    if (admission.kind !== "admitted") this.reportBudget(admission, socket, port);
    if (admission.kind === "displaced") admission.displaced.destroy();
    if (admission.kind === "refused") return void socket.destroy();
    this.sockets.add(socket);
    // A permanent listener: a reset during any await below must never become an uncaught error.
    socket.on("error", (err) => this.ctx.logger.debug({ err }, "transparent client socket error"));
    this.track(this.handle(socket, port), () => socket.destroy());
  }

  private reportBudget(admission: Exclude<Admission, { kind: "admitted" }>, socket: Socket, port: number): void {
    const displaced = admission.kind === "displaced";
    const report = this.budget.report(displaced ? "connection-cap" : admission.reason, displaced);
    if (report === undefined) return;
    const facts = newAttempt(this.ctx, "transparent", "tcp", displaced ? clientOf(admission.displaced) : clientOf(socket));
    facts.port = port;
    this.ctx.events.emit(Object.assign(egressEvent(this.ctx, facts, { verdict: "block", reasons: [report.reason] }), { error: report.detail }));
  }

  private track(work: Promise<void>, onFailure: () => void): void {
    const handler = work
      .catch((err: unknown) => {
        this.ctx.logger.error({ err }, "transparent connection failed");
        onFailure();
      })
      .finally(() => this.handlers.delete(handler));
    this.handlers.add(handler);
  }

  private async handle(socket: Socket, port: number): Promise<void> {
    const facts = newAttempt(this.ctx, "transparent", "tcp", clientOf(socket));
    facts.port = port;
    const sniffer = new FirstFlightSniffer({ maxHeadBytes: this.maxHeadBytes });
    const out = await peek(socket, sniffer, { limit: sniffer.inputLimit, timeoutMs: this.peekTimeoutMs });

    let flight: FirstFlight;
    if (out.kind === "done") flight = out.value;
    else if (out.bytes.length === 0 && out.kind === "timeout") flight = { kind: "opaque" }; // server speaks first
    else if (out.bytes.length === 0) return void socket.destroy(); // left without a word: no attempt
    else flight = { kind: "invalid", reason: out.kind === "too-large" ? "header-too-large" : sniffer.started === "tls" ? "malformed-client-hello" : "malformed-request", detail: out.kind };

    const speaksHttp = flight.kind === "http" || (flight.kind === "invalid" && sniffer.started === "http");
    if (flight.kind === "invalid") {
      facts.protocol = sniffer.started ?? "tcp";
      // A first flight begun but never finished in time is a slow client, not a malformed one.
      const reason = out.kind === "timeout" ? "peek-timeout" : flight.reason;
      const status = reason === "header-too-large" ? 431 : reason === "peek-timeout" ? 408 : 400;
      return this.refuse(socket, facts, { verdict: "block", reasons: [reason] }, speaksHttp ? status : undefined);
    }

    // HTTP: every request on the connection is decided on its own, not just this first one.
    if (flight.kind === "http") return this.http.adopt(socket, out.bytes, { kind: "transparent", port }, "transparent");

    let name: string | undefined;
    if (flight.kind === "tls") {
      facts.protocol = "tls";
      if (flight.sni !== undefined) name = facts.sni = flight.sni;
    }
    const owner = name === undefined ? this.gate.portOwner(port) : undefined;
    if (owner?.name !== undefined) name = owner.name;
    if (name !== undefined) facts.name = this.gate.normalise(name) ?? name;

    // Decided, counted and resolved by its normalised form (decide() would normalise it again).
    // Opaque to us unless the rule inspects: a rule that lists requests then refuses it.
    const dest = { protocol: facts.protocol, port, name: facts.name, opaque: true, connectionsPerMinute: this.gate.count(facts.name, port) };
    const first = this.gate.check(dest, owner?.ambiguous === true);
    // Capture (replay, quarantine) with a sandbox CA: terminate TLS too, so each request's shape
    // is recorded (and refused, like every request in capture) rather than only the SNI.
    const captureMessages = first.reasons[0] === "capture" && this.options.inspection !== undefined;
    if (!permits(first) && !captureMessages) return this.refuse(socket, facts, first, undefined);
    if ((first.inspect === true || captureMessages) && flight.kind === "tls" && facts.name !== undefined) {
      const origin = { kind: "inspected", port, name: facts.name, sni: flight.sni ?? facts.name } as const;
      return inspectConnection({
        ctx: this.ctx,
        inspection: this.options.inspection,
        socket,
        head: out.bytes,
        facts,
        name: facts.name,
        handshakeTimeoutMs: this.connectTimeoutMs,
        adopt: (tls) => this.http.adopt(tls, Buffer.alloc(0), origin, "transparent"),
      });
    }
    if (!permits(first)) return this.refuse(socket, facts, first, undefined);

    const route = await this.gate.route(dest, first);
    if (!route.permitted) return this.refuse(socket, facts, route.verdict, undefined);
    facts.ip = route.ip;
    emitEgress(this.ctx, facts, route.verdict);
    await this.connect(socket, facts, route.verdict, route.ip, port, out.bytes);
  }

  private async connect(socket: Socket, facts: AttemptFacts, verdict: Verdict, ip: string, port: number, head: Buffer): Promise<void> {
    if (socket.destroyed) {
      socket.destroy();
      return emitEgress(this.ctx, facts, verdict, { error: "client closed before upstream connect" });
    }
    let upstream: Upstream;
    try {
      upstream = await dial(ip, port, this.connectTimeoutMs);
    } catch (err) {
      emitEgress(this.ctx, facts, verdict, { error: err as Error });
      return endConnection(socket);
    }
    this.sockets.add(upstream.socket);
    if (socket.destroyed) upstream.socket.destroy();
    const stats = await splice(socket, upstream, { head, now: () => this.ctx.now(), idleTimeoutMs: this.idleTimeoutMs });
    emitEgress(this.ctx, facts, closeVerdict(verdict, stats), stats);
  }

  /** Records the verdict and ends the connection: a short response for HTTP, a plain close otherwise. */
  private refuse(socket: Socket, facts: AttemptFacts, verdict: Verdict, httpStatus: number | undefined): void {
    emitEgress(this.ctx, facts, verdict);
    if (httpStatus === undefined) return endConnection(socket);
    endConnection(socket, httpResponse(httpStatus, refusalText(verdict, facts.host ?? facts.name), refusalHeaders(verdict)));
  }
}
