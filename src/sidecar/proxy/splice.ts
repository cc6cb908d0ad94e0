import type { Socket } from "node:net";

/**
 * Joins a client and an upstream socket both ways. A FIN travels on (half-close works:
 * both sockets must be allowHalfOpen), an error or an abrupt close on one side destroys
 * the other, and the promise resolves with byte counts once both sides are closed.
 */
export interface SpliceStats {
  /** Client to upstream, including the replayed `head`. */
  readonly bytesUp: number;
  /** Upstream to client. */
  readonly bytesDown: number;
  readonly durationMs: number;
  /** The first error either side reported, if any. */
  readonly error?: Error;
}

export interface SpliceOptions {
  /** Bytes already read from the client (the peeked first flight), sent upstream first. */
  readonly head?: Buffer;
  readonly now?: () => number;
}

export function splice(client: Socket, upstream: Socket, options: SpliceOptions = {}): Promise<SpliceStats> {
  const now = options.now ?? Date.now;
  const started = now();
  let bytesUp = options.head?.length ?? 0;
  let bytesDown = 0;
  let error: Error | undefined;

  return new Promise((resolve) => {
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      resolve({ bytesUp, bytesDown, durationMs: now() - started, ...(error !== undefined ? { error } : {}) });
    };
    const wire = (self: Socket, other: Socket): void => {
      let done = false;
      const onClose = (): void => {
        if (done) return;
        done = true;
        // A side that closed without finishing both directions cut the conversation short.
        if (!(self.readableEnded && self.writableFinished)) other.destroy();
        closed();
      };
      self.on("error", (err) => {
        error ??= err;
        other.destroy();
      });
      self.once("close", onClose);
      // A socket that died before we got here may never emit close again.
      if (self.closed) process.nextTick(onClose);
    };
    wire(client, upstream);
    wire(upstream, client);
    client.on("data", (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      bytesDown += chunk.length;
    });

    if (options.head !== undefined && options.head.length > 0 && !upstream.destroyed) upstream.write(options.head);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}
