import type { Readable, Writable } from "node:stream";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { JsonLineReader, MAX_LINE_BUFFER_BYTES } from "./json-line-reader.js";

/**
 * The gateway's stdio server transport: newline-delimited JSON-RPC, as the SDK's
 * StdioServerTransport, without its schema parse of every incoming line. That parse is
 * done again where it decides anything: the SDK's Protocol routes a message only once it
 * passes the request, notification or response schema (anything else is reported to
 * onerror, as the transport's own parse failure was), and the Server validates each
 * request against its method's schema before a handler sees it. Here a line must be a
 * JSON object; the buffer is bounded like the SDK's (10 MiB). Lines are framed by
 * json-line-reader.ts, as on the client side.
 *
 * `intercept` sees each message first: one it takes (stdio-tool-calls.ts answers tools/call
 * itself) is not delivered to onmessage; `writeLine` sends a line the interceptor built.
 */
export const MAX_STDIO_BUFFER_BYTES = MAX_LINE_BUFFER_BYTES;

export class StdioServerLineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  intercept?: (message: Readonly<Record<string, unknown>>) => boolean;
  private readonly reader: JsonLineReader;
  private started = false;
  private closed = false;

  constructor(
    private readonly stdin: Readable,
    private readonly stdout: Writable,
    private readonly maxBufferBytes = MAX_STDIO_BUFFER_BYTES,
  ) {
    this.reader = new JsonLineReader(maxBufferBytes);
  }

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
    this.reader.clear();
    this.onclose?.();
  }

  private readonly onStdinError = (error: Error): void => {
    this.onerror?.(error);
  };

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.append(chunk);
    } catch {
      this.onerror?.(new Error(`stdio buffer exceeded ${this.maxBufferBytes} bytes without a complete line`));
      this.close().catch(() => undefined);
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.reader.readMessage();
      } catch (err) {
        // That line is consumed; the next one is read on its own.
        this.onerror?.(new Error(`stdio line: ${(err as Error).message}`));
        continue;
      }
      if (message === null) return;
      this.deliver(message);
      // A handler may have closed the transport.
      if (this.closed) return;
    }
  };

  private deliver(message: JSONRPCMessage): void {
    try {
      if (this.intercept?.(message as Record<string, unknown>) === true) return;
      this.onmessage?.(message);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
