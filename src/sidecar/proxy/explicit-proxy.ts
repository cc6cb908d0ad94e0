import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { permits, type Verdict } from "../../core/decision.js";
import { HangarError } from "../../core/errors.js";
import { bindServer, boundAddress, stopAccepting } from "./bind-server.js";
import type { SidecarContext } from "../sidecar-context.js";
import { parseAuthority } from "./authority.js";
import { ConnectionBudget } from "./connection-budget.js";
import { ConnectionRate } from "./connection-rate.js";
import { ConnectionSet } from "./connection-set.js";
import { dial, type Upstream } from "./dial.js";
import { EgressGate, type Destination } from "./egress-gate.js";
import { clientOf, egressEvent, emitEgress, newAttempt, type AttemptFacts } from "./egress-event.js";
import { FirstFlightSniffer } from "./first-flight.js";
import { HttpForwarder } from "./http/http-forwarder.js";
import type { RequestOrigin } from "./http/request-target.js";
import { DEFAULT_MAX_HEAD_BYTES, type HttpHead } from "./http/http-head.js";
import { HttpSessions } from "./http/http-session.js";
import { endConnection, httpResponse } from "./http-reply.js";
import { peek } from "./peek.js";
import { refusalHeaders, refusalText } from "./refusal.js";
import { closeVerdict, DEFAULT_SPLICE_IDLE_TIMEOUT_MS, splice } from "./splice.js";
import { inspectConnection } from "./tls/inspect-connection.js";
import type { TlsInspection } from "./tls/tls-terminator.js";

/**
 * The explicit path: what HTTP_PROXY / HTTPS_PROXY point at. Each connection is an HTTP
 * session of the sidecar's own (http/http-session.ts); plain HTTP is forwarded by
 * {@link HttpForwarder}; CONNECT opens a tunnel only after the authority is decided, and
 * inside it the TLS SNI must name the same host as the authority, TLS without SNI is refused
 * for a named authority, and plaintext HTTP is decided request by request like any other.
 * Either way the sidecar dials only an address it resolved, or a literal a CIDR rule allows.
 */
export interface ExplicitProxyOptions {
  readonly ctx: SidecarContext;
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Largest request head accepted; larger gets 431. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** How long a client may take to send a request head. Default 10000. */
  readonly headersTimeoutMs?: number;
  /** How long a kept-alive connection may sit idle between requests. Default 30000. */
  readonly keepAliveTimeoutMs?: number;
  /** How long to wait for the ClientHello inside a tunnel. Default 2000. */
  readonly peekTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly rate?: ConnectionRate;
  /** The sandbox CA and upstream trust, for rules that say `inspect: true`. */
  readonly inspection?: TlsInspection;
  /** Shared by every listener so the cap counts the whole sidecar. Default: the proxy's own, at the default cap. */
  readonly budget?: ConnectionBudget;
  /** A spliced tunnel without a byte either way this long is cut. Default 5 minutes. */
  readonly idleTimeoutMs?: number;
}

const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";
const EXPLICIT = { kind: "explicit" } as const;
const EMPTY = Buffer.alloc(0);

type State = "idle" | "listening" | "closing";

export class ExplicitProxy implements AsyncDisposable {
  private readonly ctx: SidecarContext;
  private readonly server: Server;
  private readonly gate: EgressGate;
  private readonly forwarder: HttpForwarder;
  /** Every HTTP connection: the proxy's own, plaintext inside CONNECT tunnels, inspected TLS. */
  private readonly sessions: HttpSessions;
  private readonly tunnels = new ConnectionSet();
  private readonly handlers = new Set<Promise<void>>();
  private readonly maxHeaderBytes: number;
  private readonly peekTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly budget: ConnectionBudget;
  private readonly idleTimeoutMs: number;
  private state: State = "idle";
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ExplicitProxyOptions) {
    this.ctx = options.ctx;
    this.maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEAD_BYTES;
    this.peekTimeoutMs = options.peekTimeoutMs ?? 2000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.budget = options.budget ?? new ConnectionBudget({ now: () => this.ctx.now() });
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_SPLICE_IDLE_TIMEOUT_MS;
    this.gate = new EgressGate(this.ctx, options.rate ?? new ConnectionRate(() => this.ctx.now()));
    this.forwarder = new HttpForwarder(this.ctx, this.gate, options.inspection?.upstreamCa, this.connectTimeoutMs);
    // No whole-request deadline (uploads may be long); a slow head is cut at headersTimeout.
    this.sessions = new HttpSessions({
      ctx: this.ctx,
      forwarder: this.forwarder,
      maxHeadBytes: this.maxHeaderBytes,
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: options.keepAliveTimeoutMs } : {}),
      track: (w, f) => this.track(w, f),
      onConnect: (head, socket, rest) => this.onConnect(head, socket, rest),
    });
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => this.onClientConnection(socket));
    this.server.on("error", (err) => this.ctx.logger.error({ err }, "explicit proxy error"));
  }

  /** Open CONNECT tunnels right now. */
  get tunnelCount(): number {
    return this.tunnels.size;
  }

  async listen(): Promise<AddressInfo> {
    if (this.state === "closing") throw new HangarError("HANGAR_CLOSED", "explicit proxy is closed");
    if (this.state === "listening") return this.address()!;
    this.state = "listening";
    await bindServer(this.server, this.options.host, this.options.port).catch((err: unknown) => {
      this.state = "idle";
      throw err;
    });
    return this.address()!;
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Stops accepting, lets requests and tunnels finish, drops idle keep-alive connections. Idempotent. */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    const wasListening = this.state === "listening";
    this.state = "closing";
    // Idle keep-alive connections close now; busy ones once their response is done.
    const serverClosed = stopAccepting(this.server, wasListening);
    this.sessions.close();
    this.closed = Promise.all([serverClosed, this.tunnels.drained(), ...this.handlers]).then(() => this.forwarder.destroy());
    return this.closed;
  }

  /** Closes and destroys every connection and tunnel now. */
  async destroy(): Promise<void> {
    const closing = this.close();
    this.sessions.destroyAll();
    this.tunnels.destroyAll();
    this.forwarder.destroy();
    await closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private track(work: Promise<void>, onFailure: () => void): void {
    const handler = work
      .catch((err: unknown) => {
        this.ctx.logger.error({ err }, "explicit proxy connection failed");
        onFailure();
      })
      .finally(() => this.handlers.delete(handler));
    this.handlers.add(handler);
  }

  private onClientConnection(socket: Socket): void {
    if (this.state !== "listening") return void socket.destroy();
    // A permanent listener: a reset during any await must never become an uncaught error.
    socket.on("error", (err) => this.ctx.logger.debug({ err }, "explicit proxy client socket error"));
    // Refused before a byte is read: a refused connection is never parsed.
    const admission = this.budget.admit(socket);
    if (admission.kind === "admitted" || admission.kind === "displaced") this.sessions.adopt(socket, EMPTY, EXPLICIT, "explicit");
    if (admission.kind === "admitted") return;
    const displaced = admission.kind === "displaced";
    const report = this.budget.report(displaced ? "connection-cap" : admission.reason, displaced);
    const client = report === undefined ? undefined : clientOf(displaced ? admission.displaced : socket);
    (displaced ? admission.displaced : socket).destroy();
    if (report === undefined) return;
    const facts = newAttempt(this.ctx, "explicit", "tcp", client);
    this.ctx.events.emit(Object.assign(egressEvent(this.ctx, facts, { verdict: "block", reasons: [report.reason] }), { error: report.detail }));
  }

  private onConnect(req: HttpHead, socket: Socket, head: Buffer): void {
    if (this.state !== "listening") return void socket.destroy();
    this.tunnels.add(socket);
    this.track(this.tunnel(req, socket, head), () => socket.destroy());
  }

  private async tunnel(req: HttpHead, socket: Socket, head: Buffer): Promise<void> {
    const facts = newAttempt(this.ctx, "explicit", "connect", clientOf(socket));
    facts.connect = req.target;
    const authority = parseAuthority(req.target, { requirePort: true });
    if (authority === undefined || authority.port === undefined) {
      return this.refuse(socket, facts, { verdict: "block", reasons: ["malformed-request"] }, 400);
    }
    const port = authority.port;
    facts.port = port;
    const name = authority.isIp ? undefined : authority.host;
    const ip = authority.isIp ? authority.host : undefined;
    if (name !== undefined) facts.name = this.gate.normalise(name) ?? name;
    if (ip !== undefined) facts.ip = ip;
    // Decided, counted and resolved by its normalised form (decide() would normalise it again).
    const dest: Destination = { protocol: "connect", port, name: facts.name, ip, connectionsPerMinute: this.gate.count(facts.name, port) };
    const first = this.gate.check(dest);
    const capture = first.reasons[0] === "capture";
    // In capture mode the tunnel opens so the SNI can be recorded; nothing is ever dialled.
    if (!permits(first) && !capture) return this.refuse(socket, facts, first, 403);

    socket.write(ESTABLISHED);
    const sniffer = new FirstFlightSniffer({ maxHeadBytes: this.maxHeaderBytes });
    const out = await peek(socket, sniffer, { limit: sniffer.inputLimit, timeoutMs: this.peekTimeoutMs, initial: head });
    if (out.kind !== "done" && out.bytes.length === 0 && out.kind !== "timeout") {
      // The client opened the tunnel and left without a word: record the attempt and stop.
      return this.refuse(socket, facts, first, undefined);
    }
    if (out.kind !== "done" && out.bytes.length > 0) {
      const reason = out.kind === "timeout" ? "peek-timeout" : "malformed-client-hello";
      return this.refuse(socket, facts, { verdict: "block", reasons: [reason] }, undefined);
    }
    const flight = out.kind === "done" ? out.value : ({ kind: "opaque" } as const);
    if (flight.kind === "invalid") return this.refuse(socket, facts, { verdict: "block", reasons: [flight.reason] }, undefined);
    if (flight.kind === "http") {
      // Plaintext inside the tunnel: each request is decided, and must name the authority.
      const origin = { kind: "tunnel", port, connect: facts.connect, ...(ip !== undefined ? { ip } : { name: facts.name }) } as const;
      return this.sessions.adopt(socket, out.bytes, origin, "explicit");
    }
    if (capture) {
      if (flight.kind === "tls" && flight.sni !== undefined) facts.sni = flight.sni;
      // With a sandbox CA, TLS is terminated so each request's shape is recorded too (then refused).
      if (flight.kind === "tls" && facts.name !== undefined && this.options.inspection !== undefined) {
        const origin = { kind: "inspected", port, name: facts.name, sni: flight.sni ?? facts.name, connect: facts.connect } as const;
        return this.inspect(socket, out.bytes, facts, origin);
      }
      return this.refuse(socket, facts, first, undefined);
    }

    if (flight.kind === "tls" && flight.sni !== undefined) {
      facts.sni = flight.sni;
      const sni = this.gate.normalise(flight.sni) ?? flight.sni;
      // An IP authority has no name to match: any SNI inside it is a mismatch.
      const expected = facts.name;
      // eslint-disable-next-line no-restricted-syntax -- once per tunnel; the flag must win over anything dest holds
      if (sni !== expected) return this.refuse(socket, facts, this.gate.check({ ...dest, sniMismatch: true }), undefined);
    } else if (flight.kind === "tls" && name !== undefined) {
      // TLS that names nothing could be for any host behind the address: the name must be held to.
      // eslint-disable-next-line no-restricted-syntax -- once per tunnel; the flag must win over anything dest holds
      return this.refuse(socket, facts, this.gate.check({ ...dest, sniMissing: true }), undefined);
    }
    if (flight.kind === "tls" && first.inspect === true && facts.name !== undefined) {
      const origin = { kind: "inspected", port, name: facts.name, sni: flight.sni ?? facts.name, connect: facts.connect } as const;
      return this.inspect(socket, out.bytes, facts, origin);
    }

    // From here on the bytes are opaque to us: a rule that lists requests refuses them.
    // eslint-disable-next-line no-restricted-syntax -- once per tunnel; the flag must win over anything dest holds
    const hidden: Destination = { ...dest, opaque: true };
    const inner = this.gate.check(hidden);
    if (!permits(inner)) return this.refuse(socket, facts, inner, undefined);
    const route = await this.gate.route(hidden, inner);
    if (!route.permitted) return this.refuse(socket, facts, route.verdict, undefined);
    facts.ip = route.ip;
    emitEgress(this.ctx, facts, route.verdict);
    if (socket.destroyed) return emitEgress(this.ctx, facts, route.verdict, { error: "client closed before upstream connect" });

    let upstream: Upstream;
    try {
      upstream = await dial(route.ip, port, this.connectTimeoutMs);
    } catch (err) {
      emitEgress(this.ctx, facts, route.verdict, { error: err as Error });
      return endConnection(socket);
    }
    this.tunnels.add(upstream.socket);
    if (socket.destroyed) upstream.socket.destroy();
    const stats = await splice(socket, upstream, { head: out.bytes, now: () => this.ctx.now(), idleTimeoutMs: this.idleTimeoutMs });
    emitEgress(this.ctx, facts, closeVerdict(route.verdict, stats), stats);
  }

  /** Terminates TLS inside the tunnel; each request is then decided by the forwarder. */
  private inspect(socket: Socket, head: Buffer, facts: AttemptFacts, origin: RequestOrigin & { readonly kind: "inspected" }): Promise<void> {
    return inspectConnection({
      ctx: this.ctx,
      inspection: this.options.inspection,
      socket,
      head,
      facts,
      name: origin.name,
      handshakeTimeoutMs: this.connectTimeoutMs,
      adopt: (tls) => this.sessions.adopt(tls, EMPTY, origin, "explicit"),
    });
  }

  /** Records the verdict and ends the tunnel: with an HTTP status before 200 was sent, silently after. */
  private refuse(socket: Socket, facts: AttemptFacts, verdict: Verdict, status: number | undefined): void {
    emitEgress(this.ctx, facts, verdict);
    if (status === undefined) return endConnection(socket);
    endConnection(socket, httpResponse(status, refusalText(verdict, facts.connect), refusalHeaders(verdict)));
  }
}
