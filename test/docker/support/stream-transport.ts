import type { Readable, Writable } from "node:stream";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * An MCP transport over a sandboxed server's attached stdio (the shape the gateway will
 * use): newline-delimited JSON-RPC written to stdin, read from stdout.
 */
export class StreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();

  constructor(
    private readonly stdin: Writable,
    private readonly stdout: Readable,
  ) {}

  async start(): Promise<void> {
    this.stdout.on("data", (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        try {
          const message = this.buffer.readMessage();
          if (message === null) break;
          this.onmessage?.(message);
        } catch (err) {
          this.onerror?.(err as Error);
        }
      }
    });
    this.stdout.on("end", () => this.onclose?.());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stdin.write(serializeMessage(message), (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    this.stdin.end();
  }
}
