import { Transform, type TransformCallback } from "node:stream";

/**
 * Newline-delimited text through a per-line function, bounded: the framing under a
 * line-level MCP filter. A line the function returns unchanged goes on as the exact bytes
 * that came in; a line longer than `maxLine` bytes is dropped whole (reported through
 * `onOversize`) instead of growing a buffer. `inject` adds a whole line of our own between
 * the lines passing through, never inside one.
 */
export interface LineFilterOptions {
  readonly maxLine: number;
  readonly onOversize?: (bytes: number) => void;
}

/** Returns the line to pass on (the same string to keep it as is), or undefined to drop it. */
export type LineFilter = (line: string) => string | undefined;

const NEWLINE = Buffer.from("\n");

export class LineFilterStream extends Transform {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;
  private flushed = false;

  constructor(
    private readonly mapLine: LineFilter,
    private readonly options: LineFilterOptions,
  ) {
    super();
  }

  /** Sends a line of our own to the reading side. Ignored once the stream has ended. */
  inject(line: string): void {
    if (!this.flushed && !this.destroyed) this.push(`${line}\n`);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        this.collect(chunk.subarray(start, nl === -1 ? chunk.length : nl));
        if (nl === -1) break;
        this.endLine();
        start = nl + 1;
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    // A last line without its newline still counts as a line.
    if (this.size > 0 || this.skipping) this.endLine();
    this.flushed = true;
    callback();
  }

  private collect(bytes: Buffer): void {
    if (this.skipping || bytes.length === 0) return;
    this.size += bytes.length;
    if (this.size > this.options.maxLine) {
      this.skipping = true;
      this.options.onOversize?.(this.size);
      this.parts = [];
      return;
    }
    this.parts.push(bytes);
  }

  private endLine(): void {
    const skipped = this.skipping;
    const raw = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    this.skipping = false;
    if (skipped) return;
    const text = raw.toString("utf8");
    const out = this.mapLine(text);
    if (out === undefined) return;
    this.push(out === text ? Buffer.concat([raw, NEWLINE]) : `${out}\n`);
  }
}
