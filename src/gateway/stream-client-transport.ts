import type { Readable, Writable } from "node:stream";
import { serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { JsonLineReader } from "./json-line-reader.js";

/**
 * An MCP client transport over a pair of Node streams: newline-delimited JSON-RPC, as
 * stdio servers speak it. For launchers that own the server's stdio themselves (a
 * container attach gives stdout and stdin streams): `new StreamClientTransport(sandbox.stdout, sandbox.stdin)`.
 * Closes when the readable ends; close() ends the writable (the server sees EOF).
 */
export interface StreamClientTransportOptions {
  /** A single message larger than this closes the transport. Default 10 MB, as the SDK's stdio transport. */
  readonly maxMessageBytes?: number;
}

export class StreamClientTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer: JsonLineReader;
  private started = false;
  private closed = false;

  constructor(
    private readonly readable: Readable,
    private readonly writable: Writable,
    options: StreamClientTransportOptions = {},
  ) {
    this.buffer = new JsonLineReader(options.maxMessageBytes ?? 10 * 1024 * 1024);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.readable.on("data", this.onData);
    this.readable.on("error", this.onStreamError);
    this.readable.on("end", this.onEnd);
    this.readable.on("close", this.onEnd);
    this.writable.on("error", this.onStreamError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || this.writable.writableEnded) {
        reject(new Error("Not connected"));
        return;
      }
      if (this.writable.write(serializeMessage(message))) resolve();
      else this.writable.once("drain", resolve);
    });
  }

  async close(): Promise<void> {
    if (!this.writable.writableEnded) this.writable.end();
    this.finish();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.buffer.append(chunk);
    } catch (err) {
      this.onerror?.(err as Error);
      void this.close();
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.buffer.readMessage();
      } catch (err) {
        // One unparsable line is reported and skipped, as the SDK's own stdio transport does.
        this.onerror?.(err as Error);
        continue;
      }
      if (message === null) break;
      this.onmessage?.(message);
    }
  };

  private readonly onStreamError = (err: Error): void => {
    this.onerror?.(err);
  };

  private readonly onEnd = (): void => {
    this.finish();
  };

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.readable.off("data", this.onData);
    this.buffer.clear();
    this.onclose?.();
  }
}
