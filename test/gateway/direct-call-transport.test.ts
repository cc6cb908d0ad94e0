import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ErrorCode, McpError, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { DirectCallTransport } from "../../src/gateway/direct-call-transport.js";
import { JsonLineReader } from "../../src/gateway/json-line-reader.js";
import { useJsonLineReader } from "../../src/gateway/local-process-launcher.js";

/** A DirectCallTransport over an in-memory pair; `upstream` is the server's end, raw. */
async function pair(): Promise<{ direct: DirectCallTransport; upstream: InMemoryTransport; received: Record<string, unknown>[]; passedOn: unknown[] }> {
  const [clientSide, upstream] = InMemoryTransport.createLinkedPair();
  const received: Record<string, unknown>[] = [];
  upstream.onmessage = (m) => void received.push(m as unknown as Record<string, unknown>);
  const direct = new DirectCallTransport(clientSide);
  const passedOn: unknown[] = [];
  direct.onmessage = (m) => void passedOn.push(m);
  await upstream.start();
  await direct.start();
  return { direct, upstream, received, passedOn };
}

const answer = (upstream: InMemoryTransport, message: Record<string, unknown>): Promise<void> => upstream.send(message as unknown as JSONRPCMessage);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("DirectCallTransport", () => {
  it("resolves a request with its answer's result; anything else goes on to the SDK Client", async () => {
    const { direct, upstream, received, passedOn } = await pair();
    const call = direct.request("tools/call", { name: "echo", arguments: { m: 1 } }, { timeoutMs: 5000 });
    await tick();
    const sent = received[0]!;
    expect(sent).toMatchObject({ jsonrpc: "2.0", method: "tools/call", params: { name: "echo", arguments: { m: 1 } } });
    expect(sent["id"]).toBeGreaterThanOrEqual(1_000_000_000);
    await answer(upstream, { jsonrpc: "2.0", method: "notifications/tools/list_changed" });
    await answer(upstream, { jsonrpc: "2.0", id: 0, result: {} }); // the Client's own request id
    await answer(upstream, { jsonrpc: "2.0", id: sent["id"], result: { content: [{ type: "text", text: "hi" }] } });
    await expect(call).resolves.toEqual({ content: [{ type: "text", text: "hi" }] });
    expect(passedOn).toEqual([
      { jsonrpc: "2.0", method: "notifications/tools/list_changed" },
      { jsonrpc: "2.0", id: 0, result: {} },
    ]);
  });

  it("rejects with the McpError of an error answer", async () => {
    const { direct, upstream, received } = await pair();
    const call = direct.request("tools/call", { name: "x" }, { timeoutMs: 5000 });
    await tick();
    await answer(upstream, { jsonrpc: "2.0", id: received[0]!["id"], error: { code: -32602, message: "no such tool", data: { tool: "x" } } });
    const err = (await call.catch((e: unknown) => e)) as McpError;
    expect(err).toBeInstanceOf(McpError);
    expect({ code: err.code, message: err.message, data: err.data }).toEqual({ code: -32602, message: "MCP error -32602: no such tool", data: { tool: "x" } });
  });

  it("leaves an answer of another shape to the Client, as the SDK's schemas would refuse it; the request then times out and is cancelled upstream", async () => {
    const { direct, upstream, received, passedOn } = await pair();
    const call = direct.request("tools/call", { name: "x" }, { timeoutMs: 300 });
    await tick();
    const id = received[0]!["id"];
    const odd = [
      { jsonrpc: "2.0", id, result: { content: [] }, extra: 1 },
      { jsonrpc: "2.0", id, result: [1] },
      { jsonrpc: "2.0", id, result: null },
      { jsonrpc: "2.0", id, result: { _meta: { progressToken: 1.5 } } },
      { jsonrpc: "1.0", id, result: {} },
      { jsonrpc: "2.0", id, error: { code: 1.5, message: "x" } },
      { jsonrpc: "2.0", id, error: { code: 1, message: 2 } },
    ];
    for (const m of odd) await answer(upstream, m);
    expect(passedOn).toEqual(odd);
    const err = (await call.catch((e: unknown) => e)) as McpError;
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(ErrorCode.RequestTimeout);
    expect(received[1]).toMatchObject({ method: "notifications/cancelled", params: { requestId: id } });
  });

  it("an abort cancels the request upstream and rejects with its reason; closing rejects what is in flight", async () => {
    const { direct, upstream, received, passedOn } = await pair();
    const abort = new AbortController();
    const aborted = direct.request("tools/call", { name: "slow" }, { timeoutMs: 5000, signal: abort.signal });
    const pending = direct.request("tools/call", { name: "slow" }, { timeoutMs: 5000 });
    await tick();
    abort.abort(new McpError(ErrorCode.RequestTimeout, "client gave up"));
    await expect(aborted).rejects.toThrow(/client gave up/);
    expect(received[2]).toMatchObject({ method: "notifications/cancelled", params: { requestId: received[0]!["id"] } });
    // A late answer to the aborted request is not ours any more: the Client hears it (and reports an unknown id).
    await answer(upstream, { jsonrpc: "2.0", id: received[0]!["id"], result: {} });
    expect(passedOn).toEqual([{ jsonrpc: "2.0", id: received[0]!["id"], result: {} }]);
    await direct.close();
    const err = (await pending.catch((e: unknown) => e)) as McpError;
    expect(err.code).toBe(ErrorCode.ConnectionClosed);
    await upstream.close();
  });

  it("hands progress on our token to onprogress, with the notification's fields only", async () => {
    const { direct, upstream, received, passedOn } = await pair();
    const progress: unknown[] = [];
    const call = direct.request("tools/call", { name: "long" }, { timeoutMs: 5000, onprogress: (p) => progress.push(p) });
    await tick();
    const sent = received[0]!;
    const token = (sent["params"] as { _meta: { progressToken: number } })._meta.progressToken;
    expect(token).toBe(sent["id"]);
    await answer(upstream, { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: token, progress: 1, total: 2, message: "half", extra: "dropped" } });
    await answer(upstream, { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 7, progress: 1 } });
    await answer(upstream, { jsonrpc: "2.0", id: token, result: {} });
    await call;
    expect(progress).toEqual([{ progress: 1, total: 2, message: "half" }]);
    expect(passedOn).toEqual([{ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 7, progress: 1 } }]);
  });
});

describe("JsonLineReader", () => {
  it("frames lines across chunks (LF or CRLF), throws for a line that is not a JSON object (consuming it), and is bounded", () => {
    const reader = new JsonLineReader(64);
    reader.append(Buffer.from('{"jsonrpc":"2.0","id":1,'));
    expect(reader.readMessage()).toBeNull();
    reader.append(Buffer.from('"result":{}}\r\n[1]\nnot json\n{"a":1}\n'));
    expect(reader.readMessage()).toEqual({ jsonrpc: "2.0", id: 1, result: {} });
    expect(() => reader.readMessage()).toThrow(/not an object/);
    expect(() => reader.readMessage()).toThrow(SyntaxError);
    expect(reader.readMessage()).toEqual({ a: 1 });
    expect(reader.readMessage()).toBeNull();
    expect(() => reader.append(Buffer.alloc(65, 0x20))).toThrow(/exceeded maximum size of 64 bytes/);
  });

  it("replaces the SDK stdio transport's reader (the local launcher's), so its every line is not parsed twice", () => {
    const transport = new StdioClientTransport({ command: process.execPath });
    useJsonLineReader(transport);
    expect((transport as unknown as { _readBuffer: unknown })._readBuffer).toBeInstanceOf(JsonLineReader);
  });
});
