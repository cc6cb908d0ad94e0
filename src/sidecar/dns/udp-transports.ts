import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { isIPv4 } from "node:net";
import { HangarError } from "../../core/errors.js";
import type { QueryOrigin } from "./query-handler.js";
import type { UdpBatchAddon, UdpBatchHandle } from "./udp-batch-addon.js";

/**
 * The DNS server's UDP socket, two ways: Node's dgram, or the batched native one (when the
 * sidecar image carries the addon). Either only moves datagrams: each one goes to `onQuery`,
 * whose answer comes back through `reply` (now or later), and `done` counts it out once the
 * reply has left or been given up.
 */
export type Reply = (response: Buffer, done: () => void) => void;
export type OnQuery = (msg: Buffer, origin: QueryOrigin, reply: Reply) => void;
export interface UdpBindOptions {
  readonly host: string;
  /** 0: a free one. */
  readonly port: number;
  /** Largest query accepted (a longer datagram still reaches onQuery, and is refused there). */
  readonly maxMessageBytes: number;
  /** Largest UDP reply. */
  readonly maxUdpPayloadBytes: number;
  readonly onQuery: OnQuery;
  /** A socket error, or a send that threw (its reply is lost; the client asks again). */
  readonly onError: (err: unknown, what: "socket" | "send") => void;
}
export type UdpBinder = (options: UdpBindOptions) => Promise<UdpTransport>;

export interface UdpTransport {
  readonly port: number;
  readonly kind: "dgram" | "batched";
  /** Lets replies still queued leave (at most limitMs), then closes. */
  close(limitMs: number): Promise<void>;
  /** Closes now; replies not yet sent are lost. */
  destroy(): void;
}

/** Node's dgram socket. */
export const bindDgram: UdpBinder = async ({ host, port, onQuery, onError }) => {
  const udp = createSocket({ type: "udp4", lookup: literalOnly });
  try {
    const bound = await bindUdp(udp, host, port);
    return new DgramTransport(udp, bound, onQuery, onError);
  } catch (err) {
    safeClose(udp);
    throw err;
  }
};

class DgramTransport implements UdpTransport {
  readonly kind = "dgram";
  private closed = false;
  /**
   * Replies waiting for the end of this turn of the event loop, four slots each: the
   * response, the client's port and address, and the query's done(). They leave together,
   * after every datagram libuv read in this poll has been answered, not one by one: a reply
   * that finds the client already awake (woken by the one before) costs the kernel far less
   * than one that must wake it. bench/dns-floor.mjs with and without: 20-25% more queries/s
   * at less CPU per query. A query answered later (from upstream) joins the next burst.
   */
  private readonly replies: Array<Buffer | number | string | (() => void)> = [];
  private readonly sendReplies = (): void => {
    const replies = this.replies;
    const count = replies.length;
    for (let i = 0; i < count; i += 4) {
      // No send callback: it costs a tick and a closure per reply (about 8% of a query's CPU).
      // The address is a literal, so the datagram has gone, or waits in the socket's send
      // queue, by the time send() returns; close() lets that queue drain before it shuts the
      // socket. A failed send is not reported (the query's event already was); the client asks again.
      try {
        if (!this.closed) this.udp.send(replies[i] as Buffer, replies[i + 1] as number, replies[i + 2] as string);
      } catch (err) {
        // The socket went away under us (closed after an error): this reply and the rest are lost.
        this.onError(err, "send");
      }
      (replies[i + 3] as () => void)();
    }
    // done() only counts the query out; nothing in it can queue another reply.
    replies.length = 0;
  };

  constructor(
    private readonly udp: UdpSocket,
    readonly port: number,
    onQuery: OnQuery,
    private readonly onError: UdpBindOptions["onError"],
  ) {
    udp.on("error", (err) => onError(err, "socket"));
    udp.on("message", (msg, rinfo) => {
      onQuery(msg, { address: rinfo.address, port: rinfo.port, transport: "udp" }, (response, done) => {
        if (this.closed) return done();
        this.replies.push(response, rinfo.port, rinfo.address, done);
        if (this.replies.length === 4) setImmediate(this.sendReplies);
      });
    });
  }

  async close(limitMs: number): Promise<void> {
    await sendQueueDrained(this.udp, limitMs);
    this.destroy();
  }

  destroy(): void {
    this.closed = true;
    safeClose(this.udp);
  }
}

/** How many datagrams one recvmmsg takes, and one sendmmsg answers. */
const BATCH_SLOTS = 64;

/**
 * The batched socket (images/sidecar/native/udp-batch.c): the kernel hands over up to 64
 * datagrams per read, and takes every reply answered in that batch in one write. Each
 * datagram is copied into a buffer of its own (the handler may keep views of it); a reply
 * given during the batch is copied into its slot, one given later (after upstream answered)
 * is sent on its own.
 */
export function batchedBinder(addon: UdpBatchAddon): UdpBinder {
  return async (options) => new BatchedTransport(addon, options);
}

class BatchedTransport implements UdpTransport {
  readonly kind = "batched";
  readonly port: number;
  private handle: UdpBatchHandle | undefined;
  private readonly input: Buffer;
  private readonly output: Buffer;
  private readonly meta: Uint32Array;
  /** The slot being answered while onBatch runs (-1 outside it), and which batch that is. */
  private current = -1;
  private batch = 0;
  private lastAddress = -1;
  private lastAddressText = "";

  constructor(
    private readonly addon: UdpBatchAddon,
    { host, port, maxMessageBytes, maxUdpPayloadBytes, onQuery }: UdpBindOptions,
  ) {
    // One byte over the limit: a datagram that fills its slot is too large, and the handler
    // refuses it as it would the whole datagram on dgram's path.
    const inBytes = maxMessageBytes + 1;
    const outBytes = maxUdpPayloadBytes;
    const input = new ArrayBuffer(BATCH_SLOTS * inBytes);
    const output = new ArrayBuffer(BATCH_SLOTS * outBytes);
    const meta = new ArrayBuffer(BATCH_SLOTS * 16);
    this.input = Buffer.from(input);
    this.output = Buffer.from(output);
    this.meta = new Uint32Array(meta);
    const onBatch = (count: number): void => {
      const batch = ++this.batch;
      for (let i = 0; i < count; i++) {
        const length = this.meta[4 * i]!;
        const start = i * inBytes;
        // A buffer of its own: the slot is overwritten by the next batch. An oversized datagram
        // keeps its first inBytes bytes, which is more than the handler accepts.
        const msg = Buffer.allocUnsafe(Math.min(length, inBytes));
        this.input.copy(msg, 0, start, start + msg.length);
        const address = this.meta[4 * i + 1]!;
        const clientPort = this.meta[4 * i + 2]!;
        this.current = i;
        onQuery(msg, { address: this.addressText(address), port: clientPort, transport: "udp" }, (response, done) => {
          if (this.current === i && this.batch === batch && response.length <= outBytes) {
            response.copy(this.output, i * outBytes);
            this.meta[4 * i + 3] = response.length;
          } else if (this.handle !== undefined) {
            this.addon.send(this.handle, response, address, clientPort);
          }
          done();
        });
      }
      this.current = -1;
    };
    const [handle, bound] = addon.open(host, port, BATCH_SLOTS, inBytes, outBytes, input, output, meta, onBatch);
    this.handle = handle;
    this.port = bound;
  }

  /** Dotted text of a client's address; a burst usually comes from one client, so the last is kept. */
  private addressText(address: number): string {
    if (address !== this.lastAddress) {
      this.lastAddress = address;
      this.lastAddressText = `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
    }
    return this.lastAddressText;
  }

  // Every reply is handed to the kernel before its query is counted out: nothing waits here.
  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    if (this.handle === undefined) return;
    const handle = this.handle;
    this.handle = undefined;
    this.addon.close(handle);
  }
}

function bindUdp(udp: UdpSocket, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    udp.once("error", onError);
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.off("error", onError);
      resolve(udp.address().port);
    });
  });
}

/**
 * dgram's address lookup (bind and every send). Replies go to the address a query came from,
 * always an IPv4 literal: it is passed through at once (the default lookup defers each send by
 * a tick), and anything else is refused, so the socket never makes the sidecar ask the host's
 * resolver.
 */
function literalOnly(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  if (isIPv4(address)) callback(null, address, 4);
  else callback(new HangarError("HANGAR_USAGE", `DNS server: UDP address ${JSON.stringify(address)} is not an IPv4 literal, and names are never resolved here`), address, 4);
}

/** Resolves once no reply waits in the socket's send queue, or after `limitMs`. */
export async function sendQueueDrained(udp: UdpSocket, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (queuedSends(udp) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
}

function queuedSends(udp: UdpSocket): number {
  try {
    return udp.getSendQueueCount();
  } catch {
    return 0; // not bound, or closed already
  }
}

function safeClose(udp: UdpSocket): void {
  try {
    udp.close();
  } catch {
    // already closed
  }
}
