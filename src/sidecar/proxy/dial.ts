import { connect, type Socket } from "node:net";
import { ReusedReadBuffer } from "./reused-read-buffer.js";

/** An upstream connection the sidecar opened, and the buffer its reads land in. */
export interface Upstream {
  readonly socket: Socket;
  readonly reads: ReusedReadBuffer;
}

/**
 * Opens a half-open-capable TCP connection to an address the sidecar resolved itself. The
 * socket comes back paused (a server-first protocol may already be talking): nothing is
 * read until `splice` attaches a sink and resumes it.
 */
export function dial(ip: string, port: number, timeoutMs: number): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const reads = new ReusedReadBuffer();
    const socket = connect({ host: ip, port, allowHalfOpen: true, noDelay: true, onread: { buffer: reads.next, callback: reads.onRead } });
    // Paused before it connects, so net never starts reading on its own.
    socket.pause();
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`connect to ${ip}:${port} timed out after ${timeoutMs}ms`)), timeoutMs);
    socket.once("error", fail);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      resolve({ socket, reads });
    });
  });
}
