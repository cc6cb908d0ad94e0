import { request, type IncomingMessage } from "node:http";
import { request as tlsRequest } from "node:https";
import type { Socket } from "node:net";
import { endConnection, httpResponse } from "../http-reply.js";

/**
 * A decided upgrade request (WebSocket) sent on to its upstream. The client's next bytes go
 * upstream only after the upstream answered 101: a server that declines the upgrade gets the
 * rest of the connection closed, never a second request that nobody decided. After 101 the
 * connection is opaque both ways. Upgrades are rare, so this favours plainness over the
 * splice's reused buffers.
 */
export interface UpgradeTarget {
  readonly ip: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly path: string;
  /** Re-originated TLS: the name to verify, against these roots. */
  readonly tls?: { readonly servername: string; readonly ca: readonly string[] };
}

export interface UpgradeStats {
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly error?: Error;
}

// Proxy credentials stop here; everything else (Upgrade, Connection, Sec-WebSocket-*) goes on.
const DROP = new Set(["host", "proxy-authorization", "proxy-connection"]);

export function forwardUpgrade(req: IncomingMessage, client: Socket, head: Buffer, to: UpgradeTarget, now: () => number): Promise<UpgradeStats> {
  const started = now();
  let bytesUp = head.length;
  let bytesDown = 0;
  const headers: string[] = ["Host", to.hostHeader];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (!DROP.has(req.rawHeaders[i]!.toLowerCase())) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (error?: Error): void => {
      if (settled) return;
      settled = true;
      resolve({ bytesUp, bytesDown, durationMs: now() - started, ...(error ? { error } : {}) });
    };
    client.pause();
    const options = { host: to.ip, port: to.port, method: req.method, path: to.path, headers, setHost: false, agent: false } as const;
    const upstream = to.tls === undefined ? request(options) : tlsRequest({ ...options, servername: to.tls.servername, ca: [...to.tls.ca], rejectUnauthorized: true });
    upstream.on("error", (err) => {
      endConnection(client, httpResponse(502, "Hangar: the upstream request failed."));
      done(err);
    });
    upstream.once("response", (res: IncomingMessage) => {
      // Declined: relay the answer and close; nothing else the client sent is forwarded.
      const lines = [`HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ""}`];
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
        const key = res.rawHeaders[i]!.toLowerCase();
        if (key !== "connection" && key !== "transfer-encoding" && key !== "content-length") lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      }
      client.write(`${lines.join("\r\n")}\r\nConnection: close\r\n\r\n`);
      res.on("data", (chunk: Buffer) => {
        bytesDown += chunk.length;
        client.write(chunk);
      });
      res.once("end", () => {
        endConnection(client);
        done();
      });
      res.once("error", (err) => {
        client.destroy();
        done(err);
      });
    });
    upstream.once("upgrade", (res: IncomingMessage, up: Socket, upHead: Buffer) => {
      const lines = [`HTTP/1.1 ${res.statusCode ?? 101} ${res.statusMessage ?? "Switching Protocols"}`];
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      client.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (upHead.length > 0) {
        bytesDown += upHead.length;
        client.write(upHead);
      }
      if (head.length > 0) up.write(head);
      const fail = (err: Error): void => {
        client.destroy();
        up.destroy();
        done(err);
      };
      up.on("error", fail);
      client.on("error", fail);
      up.on("data", (chunk: Buffer) => {
        bytesDown += chunk.length;
        if (!client.write(chunk)) up.pause();
      });
      client.on("drain", () => up.resume());
      client.on("data", (chunk: Buffer) => {
        bytesUp += chunk.length;
        if (!up.write(chunk)) client.pause();
      });
      up.on("drain", () => client.resume());
      up.once("end", () => client.end());
      client.once("end", () => up.end());
      let open = 2;
      const closed = (): void => {
        if (--open === 0) done();
      };
      up.once("close", closed);
      client.once("close", closed);
      client.resume();
    });
    upstream.end();
  });
}
