import type { Readable } from "node:stream";

/**
 * Reads newline-delimited text from a stream, bounded: a line longer than `maxLine`
 * bytes is dropped whole (reported through onOversize) instead of growing a buffer.
 */
export function readLines(
  stream: Readable,
  onLine: (line: string) => void,
  options: { maxLine?: number; onOversize?: (bytes: number) => void } = {},
): void {
  const maxLine = options.maxLine ?? 64 * 1024;
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  stream.on("data", (chunk: Buffer) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!skipping) {
        size += end - start;
        if (size > maxLine) {
          skipping = true;
          options.onOversize?.(size);
          parts = [];
        } else {
          parts.push(chunk.subarray(start, end));
        }
      }
      if (nl === -1) break;
      if (!skipping) {
        const line = Buffer.concat(parts).toString("utf8").replace(/\r$/, "");
        if (line.trim() !== "") onLine(line);
      }
      parts = [];
      size = 0;
      skipping = false;
      start = nl + 1;
    }
  });
}
