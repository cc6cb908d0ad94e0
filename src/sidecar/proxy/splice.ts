import type { Socket } from "node:net";
import type { Verdict } from "../../core/decision.js";
import type { Upstream } from "./dial.js";

/**
 * Joins a client and an upstream socket both ways. A FIN travels on (half-close works:
 * both sockets must be allowHalfOpen), an error or an abrupt close on one side destroys
 * the other, and the promise resolves with byte counts once both sides are closed.
 *
 * The hot loop is written out rather than `pipe()`d: one listener per direction that counts
 * and writes, the same backpressure, and upstream reads into a reused buffer (see
 * ReusedReadBuffer). Nothing here allocates per chunk beyond the chunk's view.
 */
export interface SpliceStats {
  /** Client to upstream, including the replayed `head`. */
  readonly bytesUp: number;
  /** Upstream to client. */
  readonly bytesDown: number;
  readonly durationMs: number;
  /** The first error either side reported, if any. */
  readonly error?: Error;
  /** Cut by the sidecar after `idleTimeoutMs` without a byte either way. */
  readonly idleTimedOut?: true;
}

export interface SpliceOptions {
  /** Bytes already read from the client (the peeked first flight), sent upstream first. */
  readonly head?: Buffer;
  readonly now?: () => number;
  /** Cut both sides after this long without a byte either way. Default: never. */
  readonly idleTimeoutMs?: number;
}

/** The default idle cut for spliced connections: five minutes without a byte either way. */
export const DEFAULT_SPLICE_IDLE_TIMEOUT_MS = 5 * 60_000;

export function splice(client: Socket, upstream: Upstream, options: SpliceOptions = {}): Promise<SpliceStats> {
  const now = options.now ?? Date.now;
  const started = now();
  const up = upstream.socket;
  let bytesUp = options.head?.length ?? 0;
  let bytesDown = 0;
  let error: Error | undefined;
  let idleTimedOut = false;

  return new Promise((resolve) => {
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      client.setTimeout(0);
      resolve({ bytesUp, bytesDown, durationMs: now() - started, ...(error !== undefined ? { error } : {}), ...(idleTimedOut ? { idleTimedOut } : {}) });
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
    wire(client, up);
    wire(up, client);

    // Every byte either way is read from or written to the client socket, and node re-arms a
    // socket's timer on both: one timer per connection, nothing per chunk.
    if (options.idleTimeoutMs !== undefined && options.idleTimeoutMs > 0) {
      client.setTimeout(options.idleTimeoutMs, () => {
        idleTimedOut = true;
        client.destroy();
        up.destroy();
      });
    }

    if (options.head !== undefined && options.head.length > 0 && !up.destroyed) up.write(options.head);

    // Client → upstream: Node's own read buffers ('data'), paused while upstream is full.
    client.on("data", (chunk: Buffer) => {
      bytesUp += chunk.length;
      if (!up.write(chunk)) client.pause();
    });
    up.on("drain", () => client.resume());
    afterEnd(client, () => up.end());

    // Upstream → client: into the reused buffer, which may be refilled only once the
    // chunk has left, i.e. when the write completed at once (nothing left queued).
    let waiting = false;
    const written = (err?: Error | null): void => {
      if (!waiting || err) return;
      waiting = false;
      up.resume();
    };
    upstream.reads.attach((chunk) => {
      bytesDown += chunk.length;
      client.write(chunk, written);
      if (client.writableLength === 0) return true;
      waiting = true;
      return false;
    });
    afterEnd(up, () => client.end());

    client.resume();
    up.resume();
  });
}

/** The verdict a close event carries: the decide verdict, plus `idle-timeout` when the sidecar cut it. */
export function closeVerdict(verdict: Verdict, stats: SpliceStats): Verdict {
  // eslint-disable-next-line no-restricted-syntax -- overrides members the spread has: fast
  return stats.idleTimedOut === true ? { ...verdict, reasons: [...verdict.reasons, "idle-timeout"] } : verdict;
}

/** Runs `fn` once `socket` has ended, even if it already did (peek may have seen the FIN). */
function afterEnd(socket: Socket, fn: () => void): void {
  if (socket.readableEnded) process.nextTick(fn);
  else socket.once("end", fn);
}
