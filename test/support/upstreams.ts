import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import type { TestPki } from "./tls.js";

/**
 * Upstream servers of our own that count every connection and byte they receive, so a
 * test can prove that a blocked attempt reached nothing at all. Each binds to a given
 * loopback address (127.0.0.x) and port, so "allowed" and "undeclared" upstreams can share
 * a port number on different addresses, as real destinations do.
 */
export interface Upstream extends AsyncDisposable {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Raw bytes received over all connections (TLS records included). */
  readonly bytesReceived: number;
  close(): Promise<void>;
}

export interface HttpRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  readonly headers: IncomingMessage["headers"];
  readonly bodyBytes: number;
}

export interface HttpUpstream extends Upstream {
  readonly requests: readonly HttpRequestRecord[];
}

export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
  readonly label?: string;
}

class Counter {
  connections = 0;
  private closedBytes = 0;
  private readonly live = new Set<Socket>();

  watch(socket: Socket): void {
    this.connections++;
    this.live.add(socket);
    socket.once("close", () => {
      this.live.delete(socket);
      this.closedBytes += socket.bytesRead;
    });
  }

  get bytes(): number {
    let n = this.closedBytes;
    for (const s of this.live) n += s.bytesRead;
    return n;
  }

  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }
}

async function bind(server: Server, at: UpstreamAddress): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("upstream has no address");
  return address.port;
}

function upstream(server: Server, counter: Counter, at: UpstreamAddress, port: number): Upstream {
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    counter.destroyAll();
    await done;
  };
  return {
    label: at.label ?? `${at.host}:${port}`,
    host: at.host,
    port,
    get connections() {
      return counter.connections;
    },
    get bytesReceived() {
      return counter.bytes;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Answers every request with JSON naming this upstream, the method, path and Host it saw. `/bytes/N` returns N bytes. */
function echoHandler(label: string, requests: HttpRequestRecord[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    let bodyBytes = 0;
    req.on("data", (c: Buffer) => (bodyBytes += c.length));
    req.on("end", () => {
      const path = req.url ?? "";
      requests.push({ method: req.method ?? "", path, host: req.headers.host, headers: req.headers, bodyBytes });
      const big = /^\/bytes\/(\d{1,9})$/.exec(path);
      if (big !== null) {
        const n = Number(big[1]);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
        res.end(Buffer.alloc(n, 0x61));
        return;
      }
      const body = JSON.stringify({ upstream: label, method: req.method, path, host: req.headers.host, bodyBytes });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-upstream": label });
      res.end(body);
    });
  };
}

export async function startHttpUpstream(at: UpstreamAddress): Promise<HttpUpstream> {
  const counter = new Counter();
  const requests: HttpRequestRecord[] = [];
  const label = at.label ?? `http ${at.host}`;
  const server = createHttpServer({ keepAlive: true }, echoHandler(label, requests));
  server.on("connection", (s: Socket) => counter.watch(s));
  const port = await bind(server, at);
  return Object.assign(upstream(server, counter, { ...at, label }, port), { requests });
}

/** An HTTPS server (HTTP over TLS) with a certificate from the in-test CA. */
export async function startTlsUpstream(at: UpstreamAddress & { readonly pki: TestPki }): Promise<HttpUpstream> {
  const counter = new Counter();
  const requests: HttpRequestRecord[] = [];
  const label = at.label ?? `tls ${at.host}`;
  const server = createHttpsServer({ key: at.pki.key, cert: at.pki.cert, keepAlive: true }, echoHandler(label, requests));
  // 'connection' fires with the raw TCP socket, before TLS: its bytesRead counts records.
  server.on("connection", (s: Socket) => counter.watch(s));
  server.on("tlsClientError", () => undefined);
  const port = await bind(server, at);
  return Object.assign(upstream(server, counter, { ...at, label }, port), { requests });
}

export interface TcpUpstreamOptions extends UpstreamAddress {
  /** Sent as soon as a client connects (a server-first protocol such as SMTP). */
  readonly greeting?: string;
}

/** Echoes what it receives; a FIN from the client is answered with a FIN after the echo. */
export async function startTcpUpstream(at: TcpUpstreamOptions): Promise<Upstream> {
  const counter = new Counter();
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => undefined);
    if (at.greeting !== undefined) socket.write(at.greeting);
    socket.pipe(socket);
  });
  server.on("connection", (s: Socket) => counter.watch(s));
  const port = await bind(server, at);
  return upstream(server, counter, { ...at, label: at.label ?? `tcp ${at.host}` }, port);
}
