import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type SecureContext } from "node:tls";
import { RegionReader } from "./region-reader.js";

/**
 * Keep-alive connections to upstreams, per resolved address, port and (re-originated TLS)
 * verified name. The most recently used one is handed out first, so a few stay warm. An idle
 * connection that the upstream closes, or that says anything unasked, leaves the pool.
 */
export interface UpstreamConnection {
  readonly socket: Socket;
  /** Where its reads land: attach a sink to receive them (no 'data' events are emitted). */
  readonly reader: RegionReader;
  readonly key: string;
  /** It carried an earlier request: the upstream may have closed it meanwhile. */
  readonly reused: boolean;
}

export interface UpstreamTarget {
  readonly ip: string;
  readonly port: number;
  /** Re-originated TLS, verified for this name. */
  readonly servername?: string;
}

export interface UpstreamPoolOptions {
  readonly connectTimeoutMs?: number;
  /** Idle connections kept per key. Default 64. */
  readonly maxFreePerKey?: number;
  /** An idle connection is closed after this long. Default 30000. */
  readonly idleTimeoutMs?: number;
  /** The trust store of re-originated TLS, built once. */
  readonly tlsContext?: () => SecureContext;
}

interface Idle {
  readonly socket: Socket;
  readonly reader: RegionReader;
  readonly timer: NodeJS.Timeout;
  readonly drop: () => void;
}

export class UpstreamPool {
  private readonly free = new Map<string, Idle[]>();
  private readonly connectTimeoutMs: number;
  private readonly maxFreePerKey: number;
  private readonly idleTimeoutMs: number;
  private destroyed = false;

  constructor(private readonly options: UpstreamPoolOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.maxFreePerKey = options.maxFreePerKey ?? 64;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  static keyOf(t: UpstreamTarget): string {
    return t.servername === undefined ? `${t.ip}|${t.port}` : `${t.ip}|${t.port}|${t.servername}`;
  }

  /** A warm connection when one is idle (at once), else a new one (fresh: never from the pool). */
  acquire(target: UpstreamTarget, fresh = false): UpstreamConnection | Promise<UpstreamConnection> {
    const key = UpstreamPool.keyOf(target);
    const list = fresh ? undefined : this.free.get(key);
    while (list !== undefined && list.length > 0) {
      const idle = list.pop()!;
      idle.drop();
      if (!idle.socket.destroyed && idle.socket.readyState === "open") return { socket: idle.socket, reader: idle.reader, key, reused: true };
    }
    const reader = new RegionReader();
    return this.connect(target, reader).then((socket) => ({ socket, reader, key, reused: false }));
  }

  /** Back to the pool, idle; a connection that cannot carry another request must be destroyed instead. */
  release(conn: UpstreamConnection): void {
    const { socket, key, reader } = conn;
    if (this.destroyed || socket.destroyed) return void socket.destroy();
    let list = this.free.get(key);
    if (list === undefined) this.free.set(key, (list = []));
    if (list.length >= this.maxFreePerKey) return void socket.destroy();
    const gone = (): void => {
      idle.drop();
      socket.destroy();
    };
    const timer = setTimeout(gone, this.idleTimeoutMs);
    timer.unref();
    const drop = (): void => {
      clearTimeout(timer);
      reader.attach(undefined);
      socket.off("end", gone);
      socket.off("close", gone);
      const at = list.indexOf(idle);
      if (at !== -1) list.splice(at, 1);
    };
    const idle: Idle = { socket, reader, timer, drop };
    // Idle means silent: a byte now is not an answer to anything, and an end means it is gone.
    reader.attach(gone);
    socket.on("end", gone);
    socket.on("close", gone);
    if (socket.isPaused()) socket.resume();
    list.push(idle);
  }

  destroy(): void {
    this.destroyed = true;
    for (const list of this.free.values()) {
      for (const idle of [...list]) {
        idle.drop();
        idle.socket.destroy();
      }
    }
    this.free.clear();
  }

  private connect(target: UpstreamTarget, reader: RegionReader): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const tls = target.servername !== undefined;
      if (tls && this.options.tlsContext === undefined) return reject(new Error("an inspected request without an upstream trust store"));
      const onread = { buffer: reader.next, callback: reader.onRead };
      // tls.connect takes onread as net does (documented), though @types/node leaves it out.
      const tlsOptions = (): ConnectionOptions & { readonly onread: typeof onread } => ({ host: target.ip, port: target.port, servername: target.servername, secureContext: this.options.tlsContext!(), rejectUnauthorized: true, ALPNProtocols: ["http/1.1"], onread });
      const socket = tls
        ? tlsConnect(tlsOptions())
        : connect({ host: target.ip, port: target.port, noDelay: true, onread });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`connect to ${target.ip}:${target.port} timed out after ${this.connectTimeoutMs}ms`)), this.connectTimeoutMs);
      socket.once("error", fail);
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        // Errors are handled by whoever uses the connection; none may go uncaught in between.
        socket.on("error", ignore);
        if (tls) socket.setNoDelay(true);
        resolve(socket);
      });
    });
  }
}

function ignore(): void {}
