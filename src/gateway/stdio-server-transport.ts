import type { Readable, Writable } from "node:stream";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * The gateway's stdio server transport: newline-delimited JSON-RPC, as the SDK's
 * StdioServerTransport, without its schema parse of every incoming line. That parse is
 * done again where it decides anything: the SDK's Protocol routes a message only once it
 * passes the request, notification or response schema (anything else is reported to
 * onerror, as the transport's own parse failure was), and the Server validates each
 * request against its method's schema before a handler sees it. Here a line must be a
 * JSON object; the buffer is bounded like the SDK's (10 MiB).
 *
 * `intercept` sees each message first: one it takes (stdio-tool-calls.ts answers tools/call
 * itself) is not delivered to onmessage; `writeLine` sends a line the interceptor built.
 */
export const MAX_STDIO_BUFFER_BYTES = 10 * 1024 * 1024;

export class StdioServerLineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  intercept?: (message: Readonly<Record<string, unknown>>) => boolean;
  private buffer: Buffer | undefined;
  private started = false;
  private closed = false;

  constructor(
    private readonly stdin: Readable,
    private readonly stdout: Writable,
    private readonly maxBufferBytes = MAX_STDIO_BUFFER_BYTES,
  ) {}

  async start(): Promise<void> {
    if (this.started) throw new Error("StdioServerLineTransport already started");
    this.started = true;
    this.stdin.on("data", this.onData);
    this.stdin.on("error", this.onStdinError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.stdout.write(`${JSON.stringify(message)}\n`)) resolve();
      else this.stdout.once("drain", resolve);
    });
  }

  /** Writes one line (no newline in it: JSON.stringify output); backpressure is Node's stream buffer. */
  writeLine(line: string): void {
    if (!this.closed) this.stdout.write(`${line}\n`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stdin.off("data", this.onData);
    this.stdin.off("error", this.onStdinError);
    // Pause stdin only when nobody else reads it.
    if (this.stdin.listenerCount("data") === 0) this.stdin.pause();
    this.buffer = undefined;
    this.onclose?.();
  }

  private readonly onStdinError = (error: Error): void => {
    this.onerror?.(error);
  };

  private readonly onData = (chunk: Buffer): void => {
    const size = (this.buffer?.length ?? 0) + chunk.length;
    if (size > this.maxBufferBytes) {
      this.buffer = undefined;
      this.onerror?.(new Error(`stdio buffer exceeded ${this.maxBufferBytes} bytes without a complete line`));
      this.close().catch(() => undefined);
      return;
    }
    let buffer = this.buffer === undefined ? chunk : Buffer.concat([this.buffer, chunk]);
    for (let end = buffer.indexOf(0x0a); end !== -1; end = buffer.indexOf(0x0a)) {
      const line = buffer.toString("utf8", 0, end > 0 && buffer[end - 1] === 0x0d ? end - 1 : end);
      buffer = buffer.subarray(end + 1);
      this.deliver(line);
      // A handler may have closed the transport.
      if (this.closed) return;
    }
    this.buffer = buffer.length === 0 ? undefined : buffer;
  };

  private deliver(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (err) {
      this.onerror?.(new Error(`stdio line is not JSON: ${(err as Error).message}`));
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.onerror?.(new Error("stdio line is not a JSON-RPC message (not an object)"));
      return;
    }
    try {
      if (this.intercept?.(message as Record<string, unknown>) === true) return;
      this.onmessage?.(message as JSONRPCMessage);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
