/**
 * Where an upstream connection's reads land: successive regions of one buffer the
 * connection keeps, not a fresh buffer per read (Node allocates one for every read, and on
 * a bulk inspected download those allocations drove V8 into a major GC several times a
 * second: a fifth of the sidecar's CPU under `perf`). A chunk handed to the sink is a view
 * into the buffer; a sink that keeps a view past the call (a write still queued) holds it
 * and releases it once written. Reads go back to the start of the buffer once no view is
 * held, and move to a new buffer only when the current one is full of held views.
 */
export type RegionSink = (chunk: Buffer, hold: () => () => void) => void;

const SIZE = 512 * 1024;
/** A read gets at least this much room (a TLS read yields at most 16 KiB, a TCP read 64 KiB). */
const MIN_ROOM = 64 * 1024;

interface Region {
  readonly buffer: Buffer;
  held: number;
}

export class RegionReader {
  private current: Region = { buffer: Buffer.allocUnsafeSlow(SIZE), held: 0 };
  private offset = 0;
  private sink: RegionSink | undefined;

  /** The buffer for the next read (net and tls call it after every read, and once at connect). */
  readonly next = (): Buffer => {
    if (this.current.held === 0) this.offset = 0;
    else if (SIZE - this.offset < MIN_ROOM) {
      // Every view in this buffer may still be queued for writing: leave it to them.
      this.current = { buffer: Buffer.allocUnsafeSlow(SIZE), held: 0 };
      this.offset = 0;
    }
    return this.current.buffer.subarray(this.offset);
  };

  /** The onread callback. Reading never stops here: the sink pauses the socket for backpressure. */
  readonly onRead = (n: number, read: Buffer): boolean => {
    const region = read.buffer === this.current.buffer.buffer ? this.current : { buffer: read, held: 0 };
    if (region === this.current) this.offset = read.byteOffset - this.current.buffer.byteOffset + n;
    const chunk = read.subarray(0, n);
    if (this.sink === undefined) return true;
    this.sink(chunk, () => {
      region.held++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        region.held--;
      };
    });
    return true;
  };

  /** Sends every chunk read from now on to `sink` (undefined: dropped). */
  attach(sink: RegionSink | undefined): void {
    this.sink = sink;
  }
}
