import type { Socket } from "node:net";
import type { ResponseHead } from "./http-head.js";
import type { UpstreamConnection } from "./upstream-pool.js";

/**
 * After an upstream answered a decided upgrade request (WebSocket) with 101, the connection
 * is opaque bytes both ways. The client's bytes that followed its request go upstream only
 * now: a server that declines the upgrade never sees a second request nobody decided.
 * Upgrades are rare, so this favours plainness over the splice's reused buffers.
 */
export interface UpgradeStats {
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly error?: Error;
}

export function relayUpgraded(client: Socket, conn: UpstreamConnection, head: ResponseHead, upRest: Buffer, clientRest: Buffer): Promise<UpgradeStats> {
  const up = conn.socket;
  let bytesUp = clientRest.length;
  let bytesDown = upRest.length;
  return new Promise((resolve) => {
    let settled = false;
    let error: Error | undefined;
    let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
    for (let i = 0; i + 1 < head.rawHeaders.length; i += 2) text += `${head.rawHeaders[i]}: ${head.rawHeaders[i + 1]}\r\n`;
    client.write(`${text}\r\n`, "latin1");
    if (upRest.length > 0) client.write(upRest);
    if (clientRest.length > 0) up.write(clientRest);
    const fail = (err: Error): void => {
      error ??= err;
      client.destroy();
      up.destroy();
    };
    up.on("error", fail);
    client.on("error", fail);
    // Reads land in the connection's own buffer: each chunk is copied out before it is written.
    conn.reader.attach((chunk) => {
      bytesDown += chunk.length;
      if (!client.write(Buffer.from(chunk))) up.pause();
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
      if (--open > 0 || settled) return;
      settled = true;
      resolve({ bytesUp, bytesDown, ...(error ? { error } : {}) });
    };
    up.once("close", closed);
    client.once("close", closed);
    up.resume();
    client.resume();
  });
}
