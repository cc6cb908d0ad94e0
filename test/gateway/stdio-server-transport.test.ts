import { PassThrough } from "node:stream";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { StdioServerLineTransport } from "../../src/gateway/stdio-server-transport.js";

function pipes(): { stdin: PassThrough; stdout: PassThrough; lines: () => Promise<unknown[]> } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let text = "";
  stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
  // Replies go out on later turns of the event loop: wait a few.
  const lines = async (): Promise<unknown[]> => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    return text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as unknown);
  };
  return { stdin, stdout, lines };
}

describe("StdioServerLineTransport", () => {
  it("delivers each line as one message, whatever the chunks, and reports lines that are not JSON objects", async () => {
    const { stdin, stdout } = pipes();
    const transport = new StdioServerLineTransport(stdin, stdout);
    const messages: unknown[] = [];
    const errors: string[] = [];
    transport.onmessage = (m) => messages.push(m);
    transport.onerror = (e) => errors.push(e.message);
    await transport.start();
    stdin.write('{"jsonrpc":"2.0","method":"a"}\n{"jsonrpc":"2.0",');
    stdin.write('"method":"b"}\r\nnot json\n[1,2]\n');
    stdin.write('42\n{"jsonrpc":"2.0","method":"c"}\n');
    await new Promise((r) => setImmediate(r));
    expect(messages).toEqual([
      { jsonrpc: "2.0", method: "a" },
      { jsonrpc: "2.0", method: "b" },
      { jsonrpc: "2.0", method: "c" },
    ]);
    expect(errors).toHaveLength(3);
    await transport.close();
  });

  it("is bounded: a line longer than its buffer is an error and closes the transport", async () => {
    const { stdin, stdout } = pipes();
    const transport = new StdioServerLineTransport(stdin, stdout, 64);
    const errors: string[] = [];
    let closed = false;
    transport.onerror = (e) => errors.push(e.message);
    transport.onclose = () => (closed = true);
    await transport.start();
    stdin.write(`{"jsonrpc":"2.0","method":"${"x".repeat(100)}"}`);
    await new Promise((r) => setImmediate(r));
    expect(errors[0]).toMatch(/exceeded 64 bytes/);
    expect(closed).toBe(true);
  });

  it("under an SDK Server: a message of no JSON-RPC shape is refused, bad params get an error, a valid call is answered", async () => {
    const { stdin, stdout, lines } = pipes();
    const server = new Server({ name: "t", version: "1" }, { capabilities: { tools: {} } });
    const errors: string[] = [];
    server.onerror = (e) => errors.push(e.message);
    server.setRequestHandler(CallToolRequestSchema, (request) => ({ content: [{ type: "text", text: `called ${request.params.name}` }] }));
    await server.connect(new StdioServerLineTransport(stdin, stdout));
    const send = (m: unknown): boolean => stdin.write(`${JSON.stringify(m)}\n`);
    send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "c", version: "1" } } });
    send({ jsonrpc: "2.0", notes: "no method, no id" });
    send({ jsonrpc: "1.0", id: 2, method: "tools/call", params: { name: "x" } });
    send({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: 42 } });
    send({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "echo", arguments: { a: 1 } } });
    const replies = (await lines()) as (JSONRPCMessage & { id?: number; error?: { code: number }; result?: unknown })[];
    expect(replies.map((r) => r.id).sort()).toEqual([1, 3, 4]);
    // Params the method's schema refuses never reach the handler (the SDK answers -32603 for them).
    expect(replies.find((r) => r.id === 3)?.error?.code).toBe(-32603);
    expect(replies.find((r) => r.id === 3)?.result).toBeUndefined();
    expect(replies.find((r) => r.id === 4)?.result).toEqual({ content: [{ type: "text", text: "called echo" }] });
    // The two messages of no JSON-RPC shape were reported, never answered or routed.
    expect(errors.filter((e) => e.startsWith("Unknown message type"))).toHaveLength(2);
    await server.close();
  });
});
