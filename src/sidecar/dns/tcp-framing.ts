import { HangarError } from "../../core/errors.js";

/**
 * DNS over TCP frames every message with a 2-byte big-endian length (RFC 1035 §4.2.2).
 * The reader never holds more than one frame's worth of bytes, so a peer that announces
 * a huge length or trickles bytes cannot make us buffer without bound.
 */
export class LengthPrefixedReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageBytes: number) {}

  /** Feed bytes; returns every complete message. Throws HangarError HANGAR_DNS_MALFORMED on a bad length. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len === 0 || len > this.maxMessageBytes) {
        this.pending = Buffer.alloc(0);
        throw new HangarError("HANGAR_DNS_MALFORMED", `TCP frame length ${len} is outside 1..${this.maxMessageBytes}`, {
          data: { length: len, max: this.maxMessageBytes },
        });
      }
      if (buf.length < len + 2) break;
      out.push(Buffer.from(buf.subarray(2, len + 2)));
      buf = buf.subarray(len + 2);
    }
    // Copy the remainder so a large chunk is not kept alive by a small tail.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return out;
  }

  /** Bytes of an incomplete frame held so far. */
  get buffered(): number {
    return this.pending.length;
  }
}

export function frameMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(message.length, 0);
  return Buffer.concat([head, message]);
}
