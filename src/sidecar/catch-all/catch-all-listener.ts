import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { permits, type Verdict } from "../../core/decision.js";
import { HangarError } from "../../core/errors.js";
import type { SidecarContext } from "../sidecar-context.js";
import { bindServer, boundAddress, stopAccepting } from "../proxy/bind-server.js";
import { ConnectionBudget } from "../proxy/connection-budget.js";
import { ConnectionRate } from "../proxy/connection-rate.js";
import { ConnectionSet } from "../proxy/connection-set.js";
import { dial, type Upstream } from "../proxy/dial.js";
import { EgressGate } from "../proxy/egress-gate.js";
import { clientOf, emitEgress, newAttempt, type AttemptFacts } from "../proxy/egress-event.js";
import { closeVerdict, DEFAULT_SPLICE_IDLE_TIMEOUT_MS, splice } from "../proxy/splice.js";
import type { TransparentListener } from "../proxy/transparent-listener.js";
import { socketFd, type OriginalDestination, type OriginalDestinationReader } from "./original-destination.js";
import type { UdpCatchAll } from "./udp-catch-all.js";

/**
 * Every TCP connection the sandbox makes, whatever address and port it dialled, arrives here:
 * the sandbox's only route leads into the sidecar's netns, which rewrites each connection to
 * this listener and keeps the original destination (read back with SO_ORIGINAL_DST).
 * - To the sidecar's own address on any port (capture resolves every name to it): handed to
 *   the transparent path with that port, so SNI, Host and capture work on every port.
 * - To any other address (a raw IP): decided by the core on the address (CIDR rules, the
 *   metadata/loopback/link-local invariants); refused with an event unless declared, and
 *   otherwise spliced to that very address.
 */
export interface CatchAllListenerOptions {
  readonly ctx: SidecarContext;
  /** The sidecar's internal address: where it listens, and what its DNS hands out. */
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Addresses that mean "the sidecar itself" (its listen address, the address its DNS answers with). */
  readonly ownAddresses: readonly string[];
  readonly reader: OriginalDestinationReader;
  /** Takes the connections that were going to the sidecar's own address. */
  readonly transparent: TransparentListener;
  readonly rate?: ConnectionRate;
  readonly budget?: ConnectionBudget;
  /** Upstream connect timeout for declared raw-IP destinations. Default 10000. */
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** Its UDP counterpart, opened and closed with it. */
  readonly udp?: UdpCatchAll;
}

type State = "idle" | "listening" | "closing";

export class CatchAllListener implements AsyncDisposable {
  private readonly ctx: SidecarContext;
  private readonly server: Server;
  private readonly gate: EgressGate;
  private readonly budget: ConnectionBudget;
  private readonly sockets = new ConnectionSet();
  private readonly handlers = new Set<Promise<void>>();
  private state: State = "idle";
  private closed: Promise<void> | undefined;

  constructor(private readonly options: CatchAllListenerOptions) {
    this.ctx = options.ctx;
    this.budget = options.budget ?? new ConnectionBudget({ now: () => this.ctx.now() });
    this.gate = new EgressGate(this.ctx, options.rate ?? new ConnectionRate(() => this.ctx.now()));
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => this.onConnection(s));
    this.server.on("error", (err) => this.ctx.logger.error({ err }, "catch-all listener error"));
  }

  async listen(): Promise<AddressInfo> {
    if (this.state === "closing") throw new HangarError("HANGAR_CLOSED", "catch-all listener is closed", { data: { port: this.options.port } });
    if (this.state === "listening") return this.address()!;
    this.state = "listening";
    await bindServer(this.server, this.options.host, this.options.port).catch((err: unknown) => {
      this.state = "idle";
      throw err;
    });
    this.options.udp?.open();
    return this.address()!;
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Stops accepting and resolves when the last connection (its own and those it handed over) has closed. Idempotent. */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    const wasListening = this.state === "listening";
    this.state = "closing";
    this.options.udp?.close();
    this.closed = Promise.all([stopAccepting(this.server, wasListening), this.sockets.drained(), ...this.handlers, this.options.transparent.close()]).then(() => undefined);
    return this.closed;
  }

  async destroy(): Promise<void> {
    const closing = this.close();
    this.sockets.destroyAll();
    await Promise.all([closing, this.options.transparent.destroy()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private onConnection(socket: Socket): void {
    if (this.state !== "listening") return void socket.destroy();
    socket.on("error", (err) => this.ctx.logger.debug({ err }, "catch-all client socket error"));
    let dst: OriginalDestination;
    try {
      const fd = socketFd(socket);
      if (fd === undefined) throw new Error("the accepted socket has no file descriptor");
      dst = this.options.reader.originalDst(fd);
    } catch (err) {
      // Nothing to decide on: refused, and recorded with what is known.
      const facts = newAttempt(this.ctx, "transparent", "tcp", clientOf(socket));
      emitEgress(this.ctx, facts, { verdict: "block", reasons: ["no-name"] }, { error: `original destination unknown: ${(err as Error).message}` });
      return void socket.resetAndDestroy();
    }
    if (this.options.ownAddresses.includes(dst.address)) return this.options.transparent.adopt(socket, dst.port);

    const admission = this.budget.admit(socket);
    if (admission.kind === "displaced") admission.displaced.destroy();
    if (admission.kind === "refused") {
      const report = this.budget.report(admission.reason);
      if (report !== undefined) this.refuse(socket, attemptTo(this.ctx, socket, dst), { verdict: "block", reasons: [report.reason] });
      return void socket.destroy();
    }
    this.sockets.add(socket);
    const work = this.handle(socket, dst)
      .catch((err: unknown) => {
        this.ctx.logger.error({ err }, "catch-all connection failed");
        socket.destroy();
      })
      .finally(() => this.handlers.delete(work));
    this.handlers.add(work);
  }

  private async handle(socket: Socket, dst: OriginalDestination): Promise<void> {
    const facts = attemptTo(this.ctx, socket, dst);
    const dest = { protocol: "tcp" as const, port: dst.port, ip: dst.address, opaque: true, connectionsPerMinute: this.gate.count(dst.address, dst.port) };
    const first = this.gate.check(dest);
    if (!permits(first)) return this.refuse(socket, facts, first);
    const route = await this.gate.route(dest, first);
    if (!route.permitted) return this.refuse(socket, facts, route.verdict);
    emitEgress(this.ctx, facts, route.verdict);
    let upstream: Upstream;
    try {
      upstream = await dial(route.ip, dst.port, this.options.connectTimeoutMs ?? 10_000);
    } catch (err) {
      emitEgress(this.ctx, facts, route.verdict, { error: err as Error });
      return void socket.resetAndDestroy();
    }
    this.sockets.add(upstream.socket);
    if (socket.destroyed) upstream.socket.destroy();
    const stats = await splice(socket, upstream, { now: () => this.ctx.now(), idleTimeoutMs: this.options.idleTimeoutMs ?? DEFAULT_SPLICE_IDLE_TIMEOUT_MS });
    emitEgress(this.ctx, facts, closeVerdict(route.verdict, stats), stats);
  }

  /** Records the verdict and resets the connection, so the client fails at once. */
  private refuse(socket: Socket, facts: AttemptFacts, verdict: Verdict): void {
    emitEgress(this.ctx, facts, verdict);
    if (!socket.destroyed) socket.resetAndDestroy();
  }
}

function attemptTo(ctx: SidecarContext, socket: Socket, dst: OriginalDestination): AttemptFacts {
  const facts = newAttempt(ctx, "transparent", "tcp", clientOf(socket));
  facts.ip = dst.address;
  facts.port = dst.port;
  return facts;
}
