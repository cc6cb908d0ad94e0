import { PassThrough, Writable } from "node:stream";

const HEADER = 8;

/**
 * Splits Docker's multiplexed attach stream (8-byte header: stream type, 3 zero bytes,
 * big-endian payload length) into stdout and stderr. Payloads are forwarded as they
 * arrive, never buffered whole, so a large frame costs no memory and adds no latency.
 */
export class StdioDemuxer extends Writable {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  private readonly header = Buffer.alloc(HEADER);
  private headerFill = 0;
  private remaining = 0;
  private target: PassThrough | undefined;

  constructor() {
    super();
    this.on("finish", () => this.endOutputs());
    this.on("error", () => this.endOutputs());
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let offset = 0;
    let waitFor: PassThrough | undefined;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(HEADER - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < HEADER) break;
        this.headerFill = 0;
        const type = this.header[0];
        this.remaining = this.header.readUInt32BE(4);
        // Type 0 (stdin echo) never carries data we want; unknown types are dropped too.
        this.target = type === 1 ? this.stdout : type === 2 ? this.stderr : undefined;
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      const part = chunk.subarray(offset, offset + take);
      offset += take;
      this.remaining -= take;
      if (this.target !== undefined && !this.target.write(part)) waitFor = this.target;
    }
    // Backpressure: hold the next chunk until the slow consumer has drained.
    if (waitFor === undefined) callback();
    else waitFor.once("drain", () => callback());
  }

  private endOutputs(): void {
    if (!this.stdout.writableEnded) this.stdout.end();
    if (!this.stderr.writableEnded) this.stderr.end();
  }
}
