import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * Newline-delimited JSON-RPC from an upstream server, framed as the SDK's ReadBuffer frames
 * it (same interface, same bound, same error on overflow), without its zod parse of every
 * line against JSONRPCMessageSchema: each message is checked again where it is used (the
 * SDK Client's Protocol routes a message only once it passes the request, notification or
 * response schema; direct-call-transport.ts checks the answers it takes by hand). Here a
 * line must be a JSON object; anything else throws, as the SDK's parse did.
 */
export const MAX_LINE_BUFFER_BYTES = 10 * 1024 * 1024;

export class JsonLineReader {
  private buffer: Buffer | undefined;

  constructor(private readonly maxBufferBytes = MAX_LINE_BUFFER_BYTES) {}

  append(chunk: Buffer): void {
    const size = (this.buffer?.length ?? 0) + chunk.length;
    if (size > this.maxBufferBytes) {
      this.clear();
      throw new Error(`ReadBuffer exceeded maximum size of ${this.maxBufferBytes} bytes`);
    }
    this.buffer = this.buffer === undefined ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next complete line's message; null when no complete line is buffered. Throws for a line that is not a JSON object (the line is consumed). */
  readMessage(): JSONRPCMessage | null {
    const buffer = this.buffer;
    if (buffer === undefined) return null;
    const end = buffer.indexOf(0x0a);
    if (end === -1) return null;
    const line = buffer.toString("utf8", 0, end > 0 && buffer[end - 1] === 0x0d ? end - 1 : end);
    this.buffer = end + 1 === buffer.length ? undefined : buffer.subarray(end + 1);
    const message: unknown = JSON.parse(line);
    if (typeof message !== "object" || message === null || Array.isArray(message)) throw new Error("a line from the server is not a JSON-RPC message (not an object)");
    return message as JSONRPCMessage;
  }

  clear(): void {
    this.buffer = undefined;
  }
}
