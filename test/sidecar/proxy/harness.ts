import { connect as netConnect, createServer, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { Agent } from "undici";
import { request as httpRequest, type Agent as HttpAgent } from "node:http";
import type { LookupFunction } from "node:net";

/**
 * Shared plumbing for the proxy tests: a port number free on 127.0.0.1-3 (the sidecar,
 * the allowed upstream and the undeclared one share it, as in production), and real
 * clients that talk TLS, HTTP or raw TCP through the sidecar.
 */
export const ALLOWED_IP = "127.0.0.2";
export const EVIL_IP = "127.0.0.3";
export const SIDECAR_IP = "127.0.0.1";

async function canBind(host: string, port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen({ host, port }, () => server.close(() => resolve(true)));
  });
}

/** A port number that is free on 127.0.0.1, .2 and .3 right now. */
export async function sharedPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const probe = createServer();
    const port = await new Promise<number>((resolve) => probe.listen({ host: SIDECAR_IP, port: 0 }, () => resolve((probe.address() as { port: number }).port)));
    await new Promise<void>((r) => probe.close(() => r()));
    if ((await canBind(ALLOWED_IP, port)) && (await canBind(EVIL_IP, port))) return port;
  }
  throw new Error("no shared free port");
}

/** Our stand-in for the sidecar's DNS: every name answers with the sidecar's address. */
export const lookupSidecar: LookupFunction = ((_host: string, options: unknown, callback: unknown) => {
  const cb = (typeof options === "function" ? options : callback) as (err: Error | null, address: unknown, family?: number) => void;
  const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all === true;
  if (all) cb(null, [{ address: SIDECAR_IP, family: 4 }]);
  else cb(null, SIDECAR_IP, 4);
}) as LookupFunction;

/** An undici Agent that reaches every name through the transparent listener, trusting the test CA. */
export function transparentAgent(ca: string): Agent {
  return new Agent({ connect: { lookup: lookupSidecar, ca } });
}

/** Reads from a socket until it closes (or ends), returning everything. */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined);
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("close", () => resolve(Buffer.concat(chunks)));
  });
}

/** A plain TCP client; `halfOpen` keeps it open for writing after the peer's FIN. */
export function connectTcp(port: number, options: { host?: string; halfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: options.host ?? SIDECAR_IP, port, allowHalfOpen: options.halfOpen ?? false }, () => resolve(s));
    s.once("error", reject);
  });
}

export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.closed ? resolve() : socket.once("close", () => resolve())));
}

/** Sends CONNECT and returns the status line and the still-open socket. */
export async function openConnect(proxyPort: number, authority: string): Promise<{ status: number; socket: Socket; head: string }> {
  const socket = await connectTcp(proxyPort);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      socket.pause();
      const head = buf.subarray(0, end).toString("latin1");
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ status: Number(head.split(" ")[1]), socket, head: head + "\r\n\r\n" + rest.toString("latin1") });
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.once("close", () => resolve({ status: 0, socket, head: buf.toString("latin1") }));
  });
}

/** A TLS client over an existing socket (a CONNECT tunnel) or straight to the sidecar. */
export function tlsClient(options: { servername: string; ca: string; socket?: Socket; port?: number; host?: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      ...(options.socket !== undefined ? { socket: options.socket } : { host: options.host ?? SIDECAR_IP, port: options.port! }),
      servername: options.servername,
      ca: options.ca,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed before the TLS handshake")));
  });
}

/** One HTTP/1.1 request on a connected (TLS or plain) socket; returns the raw response. */
export async function rawRequest(socket: Socket, host: string, path = "/"): Promise<string> {
  const done = readAll(socket);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return (await done).toString("utf8");
}

/** Reads one HTTP response (head plus Content-Length body) from a keep-alive socket. */
export function readResponse(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = buf.subarray(0, end).toString("latin1");
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.off("data", onData);
      const rest = buf.subarray(end + 4 + length);
      if (rest.length > 0) socket.unshift(rest);
      resolve(buf.subarray(0, end + 4 + length).toString("utf8"));
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

/** Resolves once `pred()` holds, polling; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Open file descriptors of this process (Linux). */
export async function openFds(): Promise<number> {
  const { readdir } = await import("node:fs/promises");
  return (await readdir("/proc/self/fd")).length;
}

/** The exact first flight a real Node TLS client sends (ClientHello records), captured on loopback. */
export async function captureClientHello(options: { servername?: string; alpn?: string[] } = {}): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: SIDECAR_IP, port: 0 }, () => r()));
  const port = (server.address() as { port: number }).port;
  const captured = new Promise<Buffer>((resolve) => {
    server.once("connection", (s: Socket) => {
      const chunks: Buffer[] = [];
      // A ClientHello fits in one flight; give it a moment to arrive whole, then hang up.
      s.on("data", (c: Buffer) => chunks.push(c));
      setTimeout(() => {
        s.destroy();
        resolve(Buffer.concat(chunks));
      }, 100);
    });
  });
  const client = tlsConnect({
    host: SIDECAR_IP,
    port,
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
    ...(options.alpn !== undefined ? { ALPNProtocols: options.alpn } : {}),
    rejectUnauthorized: false,
  });
  client.on("error", () => undefined);
  const bytes = await captured;
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return bytes;
}

/** Re-frames a single-record ClientHello into records of the given payload sizes (the last takes the rest). */
export function splitIntoRecords(flight: Buffer, sizes: number[]): Buffer {
  const payload = flight.subarray(5, 5 + flight.readUInt16BE(3));
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < payload.length; i++) {
    const n = i < sizes.length ? Math.min(sizes[i]!, payload.length - pos) : payload.length - pos;
    const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    header.writeUInt16BE(n, 3);
    out.push(header, payload.subarray(pos, pos + n));
    pos += n;
  }
  return Buffer.concat(out);
}

export interface ProxiedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** A plain-HTTP request through an explicit proxy, the way curl or requests send it: absolute-form target. */
export function proxyRequest(
  proxyPort: number,
  url: string,
  options: { agent?: HttpAgent; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: SIDECAR_IP,
        port: proxyPort,
        path: url,
        method: options.method ?? "GET",
        headers: { host: new URL(url).host, ...options.headers },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}
