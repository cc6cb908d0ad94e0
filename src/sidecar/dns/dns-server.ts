import { createServer, type Server as TcpServer, type Socket } from "node:net";
import { HangarError } from "../../core/errors.js";
import { parseIp } from "../../core/ip.js";
import type { SidecarContext } from "../sidecar-context.js";
import { DnsQueryHandler, type AnswerMode, type QueryOrigin } from "./query-handler.js";
import { LengthPrefixedReader, frameMessage } from "./tcp-framing.js";
import type { RecordSource } from "./upstream-client.js";
import { bindDgram, type UdpBinder, type UdpTransport } from "./udp-transports.js";

/**
 * The sidecar's resolver for its sandbox, on UDP and TCP at one port. Every query goes
 * through DnsQueryHandler (and so through decide()); this file is only sockets, limits and
 * lifecycle: close() drains and is idempotent, destroy() forces, listen() after close
 * throws HANGAR_CLOSED.
 */
export interface DnsServerLimits {
  /** Largest query accepted, UDP or TCP. Default 4096. */
  readonly maxMessageBytes: number;
  /** A TCP connection with nothing in flight and no bytes for this long is closed. Default 10 000. */
  readonly tcpIdleTimeoutMs: number;
  /** Further connections are refused. Default 128. */
  readonly maxTcpConnections: number;
  /** After this many, the connection is closed once answered. Default 100. */
  readonly maxQueriesPerConnection: number;
  /** Queries being resolved at once, both transports; beyond it they are dropped unanswered. Default 1024. */
  readonly maxInflightQueries: number;
  /** Largest UDP response we send to EDNS clients (and advertise). Default 1232. */
  readonly maxUdpPayloadBytes: number;
}

export const DEFAULT_DNS_LIMITS: DnsServerLimits = {
  maxMessageBytes: 4096,
  tcpIdleTimeoutMs: 10_000,
  maxTcpConnections: 128,
  maxQueriesPerConnection: 100,
  maxInflightQueries: 1024,
  maxUdpPayloadBytes: 1232,
};

export interface DnsServerOptions {
  readonly context: SidecarContext;
  /** Upstream for the TXT/HTTPS/SVCB types a policy may declare (A goes through context.resolver). */
  readonly records: RecordSource;
  /** IPv4 address to bind. Default "127.0.0.1". */
  readonly host?: string;
  /** Default 53; 0 picks a free port (the same for UDP and TCP). */
  readonly port?: number;
  /** Default: the sidecar answers with `host` (which must then be a specific address). */
  readonly answer?: AnswerMode;
  /** TTL given to clients is at most this many seconds. Default 30. */
  readonly answerTtlCapSeconds?: number;
  readonly limits?: Partial<DnsServerLimits>;
  /** How the UDP socket is bound: dgram (the default), or the batched native socket (udp-transports.ts). */
  readonly udp?: UdpBinder;
}

export interface DnsServerAddress {
  readonly host: string;
  readonly port: number;
  /** Which UDP socket answers: Node's dgram, or the batched native one. */
  readonly udp: UdpTransport["kind"];
}

export interface DnsServerStats {
  readonly inflight: number;
  readonly tcpConnections: number;
  /** Queries dropped unanswered because maxInflightQueries was reached. */
  readonly droppedQueries: number;
}

interface Connection {
  readonly socket: Socket;
  inflight: number;
  finished: boolean;
  maybeEnd(): void;
}

const PORT_ATTEMPTS = 20;

export class DnsServer {
  private readonly limits: DnsServerLimits;
  private readonly handler: DnsQueryHandler;
  private readonly host: string;
  private readonly port: number;
  private readonly logger: SidecarContext["logger"];
  private readonly bindUdp: UdpBinder;
  private udp: UdpTransport | undefined;
  private tcp: TcpServer | undefined;
  private bound: DnsServerAddress | undefined;
  private readonly connections = new Set<Connection>();
  private state: "new" | "listening" | "closing" | "closed" = "new";
  private inflight = 0;
  private dropped = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: DnsServerOptions) {
    this.limits = { ...DEFAULT_DNS_LIMITS, ...options.limits };
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port ?? 53;
    this.logger = options.context.logger;
    this.bindUdp = options.udp ?? bindDgram;
    if (parseIp(this.host)?.version !== 4) throw new HangarError("HANGAR_CONFIG_INVALID", `DNS listen host ${this.host} is not an IPv4 address`);
    const answer: AnswerMode = options.answer ?? { kind: "sidecar", address: this.host };
    const answerAddress = answer.kind === "sidecar" ? answer.address : answer.captureAddress;
    if (answerAddress !== undefined && (parseIp(answerAddress)?.version !== 4 || answerAddress === "0.0.0.0")) {
      throw new HangarError("HANGAR_CONFIG_INVALID", `DNS answer address ${answerAddress} is not a specific IPv4 address`, {
        data: { answer },
      });
    }
    this.handler = new DnsQueryHandler({
      context: options.context,
      records: options.records,
      answer,
      answerTtlCapSeconds: options.answerTtlCapSeconds ?? 30,
      maxMessageBytes: this.limits.maxMessageBytes,
      maxUdpPayloadBytes: this.limits.maxUdpPayloadBytes,
    });
  }

  /** Binds UDP and TCP on one port. Throws HANGAR_CLOSED after close, HANGAR_USAGE if already listening. */
  async listen(): Promise<DnsServerAddress> {
    if (this.state === "closing" || this.state === "closed") throw new HangarError("HANGAR_CLOSED", "DNS server is closed");
    if (this.state !== "new") throw new HangarError("HANGAR_USAGE", "DNS server is already listening");
    this.state = "listening";
    let lastError: unknown;
    for (let attempt = 0; attempt < (this.port === 0 ? PORT_ATTEMPTS : 1); attempt++) {
      let udp: UdpTransport | undefined;
      try {
        udp = await this.bindUdp({
          host: this.host,
          port: this.port,
          maxMessageBytes: this.limits.maxMessageBytes,
          maxUdpPayloadBytes: this.limits.maxUdpPayloadBytes,
          onQuery: (msg, origin, reply) => this.onDatagram(msg, origin, reply),
          onError: (err, what) => (what === "send" ? this.logger.debug({ err }, "dns udp send failed") : this.logger.warn({ err }, "dns udp socket error")),
        });
        const tcp = createServer((socket) => this.onConnection(socket));
        tcp.maxConnections = this.limits.maxTcpConnections;
        await listenTcp(tcp, this.host, udp.port);
        if (this.state !== "listening") {
          // close() or destroy() ran while we were binding.
          udp.destroy();
          tcp.close();
          throw new HangarError("HANGAR_CLOSED", "DNS server closed while binding");
        }
        this.attach(udp, tcp);
        this.bound = { host: this.host, port: udp.port, udp: udp.kind };
        return this.bound;
      } catch (err) {
        lastError = err;
        udp?.destroy();
        if (err instanceof HangarError) throw err;
        // Port 0: UDP got a free port that TCP could not have; try another.
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
      }
    }
    this.state = "closed";
    throw new HangarError("HANGAR_CONFIG_INVALID", `DNS server cannot listen on ${this.host}:${this.port}: ${(lastError as Error).message}`, {
      cause: lastError,
      data: { host: this.host, port: this.port },
    });
  }

  address(): DnsServerAddress | undefined {
    return this.bound;
  }

  stats(): DnsServerStats {
    return { inflight: this.inflight, tcpConnections: this.connections.size, droppedQueries: this.dropped };
  }

  /** Stops taking queries, answers those in flight, then releases the sockets. Safe to call twice. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.state === "new" || this.state === "closed") {
      this.state = "closed";
      this.closing = Promise.resolve();
      return this.closing;
    }
    this.state = "closing";
    this.closing = (async () => {
      const tcpClosed = this.tcp === undefined ? Promise.resolve() : new Promise<void>((resolve) => this.tcp!.close(() => resolve()));
      for (const conn of this.connections) conn.maybeEnd();
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      await this.udp?.close(SEND_DRAIN_LIMIT_MS);
      await tcpClosed;
      this.state = "closed";
    })();
    return this.closing;
  }

  /** Drops every connection and query in flight now. */
  async destroy(): Promise<void> {
    const wasClosed = this.state === "closed";
    this.state = "closed";
    this.udp?.destroy();
    for (const conn of this.connections) conn.socket.destroy();
    this.tcp?.close();
    this.drained?.();
    this.closing ??= Promise.resolve();
    if (!wasClosed) await this.closing;
  }

  private attach(udp: UdpTransport, tcp: TcpServer): void {
    this.udp = udp;
    this.tcp = tcp;
    tcp.on("error", (err) => this.logger.warn({ err }, "dns tcp server error"));
    tcp.on("drop", (info) => this.logger.warn({ client: info?.remoteAddress }, "dns tcp connection refused: maxTcpConnections reached"));
  }

  private onDatagram(msg: Buffer, origin: QueryOrigin, reply: (response: Buffer, done: () => void) => void): void {
    if (this.state !== "listening") return;
    if (this.inflight >= this.limits.maxInflightQueries) {
      this.dropped += 1;
      this.logger.debug({ client: origin.address }, "dns query dropped: too many in flight");
      return;
    }
    this.run(msg, origin, reply);
  }

  /**
   * Answers one query: `reply` is called with the response (and must call `done` once sent),
   * `after` once the query is over. Most queries are answered in this very call (the handler
   * is synchronous unless it must wait for upstream), without a promise per step.
   */
  private run(msg: Buffer, origin: QueryOrigin, reply: (response: Buffer, done: () => void) => void, after?: () => void): void {
    this.inflight += 1;
    const done = (): void => {
      this.inflight -= 1;
      after?.();
      if (this.inflight === 0) this.drained?.();
    };
    const deliver = (response: Buffer | undefined): void => {
      if (response === undefined) return done();
      try {
        reply(response, done);
      } catch (err) {
        this.logger.error({ err }, "dns reply failed");
        done();
      }
    };
    let answer: ReturnType<DnsQueryHandler["handle"]>;
    try {
      answer = this.handler.handle(msg, origin);
    } catch (err) {
      // handle() is meant never to throw; if it does, this query goes unanswered, not the process.
      this.logger.error({ err }, "dns reply failed");
      return done();
    }
    if (answer instanceof Promise) {
      answer.then(deliver, (err: unknown) => {
        this.logger.error({ err }, "dns reply failed");
        done();
      });
    } else deliver(answer);
  }

  private onConnection(socket: Socket): void {
    if (this.state !== "listening") {
      socket.destroy();
      return;
    }
    const origin: QueryOrigin = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0, transport: "tcp" };
    const reader = new LengthPrefixedReader(this.limits.maxMessageBytes);
    let queries = 0;
    let peerEnded = false;
    const conn: Connection = {
      socket,
      inflight: 0,
      finished: false,
      maybeEnd: () => {
        const done = peerEnded || queries >= this.limits.maxQueriesPerConnection || this.state !== "listening";
        if (conn.inflight === 0 && done && !conn.finished) {
          conn.finished = true;
          socket.end();
        }
      },
    };
    this.connections.add(conn);
    socket.setTimeout(this.limits.tcpIdleTimeoutMs);
    socket.on("timeout", () => {
      if (conn.inflight === 0) socket.destroy();
    });
    socket.on("error", (err) => this.logger.debug({ err, client: origin.address }, "dns tcp connection error"));
    socket.on("close", () => this.connections.delete(conn));
    socket.on("end", () => {
      peerEnded = true;
      conn.maybeEnd();
    });
    socket.on("data", (chunk: Buffer) => {
      if (conn.finished || this.state !== "listening") return;
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.handler.reportMalformed(origin, err instanceof HangarError ? "bad-tcp-length" : "bad-tcp-frame");
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (queries >= this.limits.maxQueriesPerConnection) break;
        queries += 1;
        if (this.inflight >= this.limits.maxInflightQueries) {
          this.dropped += 1;
          continue;
        }
        conn.inflight += 1;
        this.run(
          frame,
          origin,
          (response, done) => {
            if (!socket.destroyed) socket.write(frameMessage(response));
            done();
          },
          () => {
            conn.inflight -= 1;
            conn.maybeEnd();
          },
        );
      }
      if (queries >= this.limits.maxQueriesPerConnection) socket.pause();
      conn.maybeEnd();
    });
  }
}

function listenTcp(tcp: TcpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    tcp.once("error", onError);
    tcp.listen({ host, port, exclusive: true }, () => {
      tcp.off("error", onError);
      resolve();
    });
  });
}

/** How long close() waits for replies still queued on the UDP socket. */
const SEND_DRAIN_LIMIT_MS = 2_000;
