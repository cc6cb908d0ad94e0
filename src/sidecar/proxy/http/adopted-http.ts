import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { SidecarContext } from "../../sidecar-context.js";
import { answerClientError } from "./client-error.js";
import type { ForwardPath, HttpForwarder } from "./http-forwarder.js";
import type { RequestOrigin } from "./request-target.js";

/**
 * HTTP on connections the sidecar accepted for another reason: a transparent port whose
 * first flight was an HTTP head, or plaintext inside a CONNECT tunnel. The connection is
 * handed to a node:http server that never listens, together with the bytes already peeked,
 * so every request on it (keep-alive, pipelined, absolute form) is framed by llhttp and
 * decided by the forwarder, exactly like the explicit proxy's.
 */
export interface AdoptedHttpOptions {
  readonly ctx: SidecarContext;
  readonly forwarder: HttpForwarder;
  readonly maxHeaderBytes: number;
  /** How long a client may take to send a request head. Default 10000. */
  readonly headersTimeoutMs?: number;
  /** Idle keep-alive connections close after this long. Default 30000. */
  readonly keepAliveTimeoutMs?: number;
  /** Every request's handling, so the owner can wait for it when it closes. */
  readonly track: (work: Promise<void>, onFailure: () => void) => void;
}

interface Adoption {
  readonly origin: RequestOrigin;
  readonly path: ForwardPath;
}

export class AdoptedHttp {
  private readonly server: Server;
  private readonly adoptions = new WeakMap<object, Adoption>();
  private draining = false;

  constructor(private readonly options: AdoptedHttpOptions) {
    const { ctx, forwarder } = options;
    this.server = createServer({
      maxHeaderSize: options.maxHeaderBytes,
      noDelay: true,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: 0,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      connectionsCheckingInterval: 1000,
    });
    // It never listens, but its timeouts (slow heads, idle keep-alive) run off the connection
    // tracking that node starts on 'listening'.
    this.server.emit("listening");
    this.server.on("request", (req, res) => {
      const adoption = this.adoptions.get(req.socket);
      if (adoption === undefined) return void res.destroy();
      options.track(forwarder.handle(req, res, adoption.origin, adoption.path), () => res.destroy());
      // While draining, a keep-alive connection is closed as soon as its response is done.
      res.once("finish", () => {
        if (this.draining) setImmediate(() => this.server.closeIdleConnections());
      });
    });
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const adoption = this.adoptions.get(socket);
      if (adoption === undefined) return void socket.destroy();
      options.track(forwarder.handleUpgrade(req, socket as Socket, head, adoption.origin, adoption.path), () => socket.destroy());
    });
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      answerClientError(ctx, err, socket as Socket, this.adoptions.get(socket)?.path ?? "transparent");
    });
  }

  /** Takes over `socket` (paused, its listeners gone); `bytes` were already read from it. */
  adopt(socket: Socket, bytes: Buffer, origin: RequestOrigin, path: ForwardPath): void {
    this.adoptions.set(socket, { origin, path });
    this.server.emit("connection", socket);
    // Straight into the server's parser, before anything read later: order is kept.
    if (bytes.length > 0) socket.emit("data", bytes);
    socket.resume();
  }

  /** Closes adopted connections that sit idle between requests. */
  closeIdle(): void {
    this.server.closeIdleConnections();
  }

  /** Stops the timeout checks; closes idle connections. Busy ones finish on their own. */
  close(): void {
    this.draining = true;
    // Never listened, so net reports "not running"; node still stops its connection checks.
    this.server.close(() => undefined);
    this.server.closeIdleConnections();
  }

  destroyAll(): void {
    this.server.closeAllConnections();
  }
}
