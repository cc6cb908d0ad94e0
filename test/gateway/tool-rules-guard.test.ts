import { PassThrough } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Policy } from "../../src/core/policy/policy-schema.js";
import { pipeGuardedStdio } from "../../src/gateway/guarded-stdio.js";
import { LineFilterStream } from "../../src/gateway/line-filter-stream.js";
import { StreamClientTransport } from "../../src/gateway/stream-client-transport.js";
import { ToolRulesGuard } from "../../src/gateway/tool-rules-guard.js";

/**
 * `hangar run`'s tool rules, below the CLI: the guard on single JSON-RPC lines, its line
 * framing, and a real SDK client and server talking through it over streams.
 */
const tools = (t: Partial<Policy["tools"]>): Policy["tools"] => ({ deny: [], ...t }) as Policy["tools"];
const call = (id: number | string | undefined, name: unknown): string => JSON.stringify({ jsonrpc: "2.0", ...(id === undefined ? {} : { id }), method: "tools/call", params: { name, arguments: {} } });

describe("ToolRulesGuard on single lines", () => {
  it("answers a call to a denied tool with the gateway's MCP error, naming the rule, and passes nothing on", () => {
    const guard = new ToolRulesGuard({ server: "everything", tools: tools({ deny: ["get-*"] }), now: () => 0 });
    const outcome = guard.fromClient(call(7, "get-sum"));
    expect(outcome.toServer).toBeUndefined();
    expect(JSON.parse(outcome.toClient!)).toEqual({
      jsonrpc: "2.0",
      id: 7,
      error: {
        code: -32010,
        // Bare: the client's SDK puts "MCP error -32010: " in front, once.
        message: 'tool "get-sum" of server "everything" is refused by its policy (tools.deny "get-*")',
        data: { code: "HANGAR_GATEWAY_DENIED", permission: 'everything:tools.deny "get-*"', server: "everything", tool: "get-sum" },
      },
    });
    expect(outcome.refused?.tool).toBe("get-sum");
    const echo = call("a", "echo");
    expect(guard.fromClient(echo)).toEqual({ toServer: echo });
  });

  it("refuses a tool outside tools.allow, and deny wins over allow", () => {
    const guard = new ToolRulesGuard({ server: "s", tools: tools({ allow: ["read_*"], deny: ["read_secret"] }), now: () => 0 });
    expect(JSON.parse(guard.fromClient(call(1, "write_file")).toClient!).error.message).toContain("is not in its policy's tools.allow [read_*]");
    expect(JSON.parse(guard.fromClient(call(2, "read_secret")).toClient!).error.message).toContain('tools.deny "read_secret"');
    expect(guard.fromClient(call(3, "read_file")).toServer).toBeDefined();
  });

  it("rate-limits as the gateway does: refused calls cost nothing, tokens come back over the minute", () => {
    let now = 1_000_000;
    const guard = new ToolRulesGuard({ server: "s", tools: tools({ deny: ["bad"], rateLimit: { perMinute: 2 } }), now: () => now });
    expect(guard.fromClient(call(1, "bad")).toClient).toBeDefined();
    expect(guard.fromClient(call(2, "ok")).toServer).toBeDefined();
    expect(guard.fromClient(call(3, "ok")).toServer).toBeDefined();
    const limited = JSON.parse(guard.fromClient(call(4, "ok")).toClient!);
    expect(limited).toMatchObject({ id: 4, error: { code: -32011, data: { code: "HANGAR_GATEWAY_RATE_LIMITED", permission: "tools.rateLimit", retryAfterMs: 30_000 } } });
    expect(limited.error.message).toContain('server "s" allows 2 tool calls per minute (tools.rateLimit.perMinute); retry in 30 s');
    now += 30_000;
    expect(guard.fromClient(call(5, "ok")).toServer).toBeDefined();
  });

  it("drops a refused tools/call sent as a notification, and refuses a call without a tool name", () => {
    const guard = new ToolRulesGuard({ server: "s", tools: tools({ deny: ["x"] }), now: () => 0 });
    expect(guard.fromClient(call(undefined, "x"))).toEqual({ refused: expect.objectContaining({ tool: "x" }) });
    expect(JSON.parse(guard.fromClient(call(9, ["x"])).toClient!)).toMatchObject({ id: 9, error: { code: -32602 } });
  });

  it("refuses JSON-RPC batches and lines that are not JSON, and passes everything else as it came", () => {
    const guard = new ToolRulesGuard({ server: "s", tools: tools({ deny: ["x"] }), now: () => 0 });
    expect(JSON.parse(guard.fromClient(`[${call(1, "x")}]`).toClient!)).toMatchObject({ id: null, error: { code: -32600 } });
    expect(JSON.parse(guard.fromClient("{not json").toClient!)).toMatchObject({ id: null, error: { code: -32700 } });
    const list = '{"jsonrpc":"2.0","id":1,"method":"tools/list",  "params":{}}';
    expect(guard.fromClient(list)).toEqual({ toServer: list });
  });

  it("withholds refused tools from any result listing tools, whatever id it answers", () => {
    const guard = new ToolRulesGuard({ server: "s", tools: tools({ deny: ["get-*"] }), now: () => 0 });
    const listed = (id: unknown): string => JSON.stringify({ jsonrpc: "2.0", id, result: { tools: [{ name: "echo" }, { name: "get-sum" }, { title: "nameless" }], nextCursor: "c" } });
    for (const id of [1, "1", " 1"]) expect(JSON.parse(guard.fromServer(listed(id)))).toEqual({ jsonrpc: "2.0", id, result: { tools: [{ name: "echo" }], nextCursor: "c" } });
    expect(JSON.parse(guard.fromServer(`[${listed(2)}]`))).toEqual([{ jsonrpc: "2.0", id: 2, result: { tools: [{ name: "echo" }], nextCursor: "c" } }]);
    const other = '{"jsonrpc":"2.0","id":3,"result":{"content":[]}}';
    expect(guard.fromServer(other)).toBe(other);
    expect(guard.fromServer("a log line on stdout")).toBe("a log line on stdout");
  });
});

describe("ToolRulesGuard argument rules (hangar run)", () => {
  const AWS_ID = ["AKIA", "IOSFODNN7", "EXAMPLE"].join("");
  const callWith = (id: number, args: unknown): string => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: args } });

  it("ENFORCING answers a call whose arguments carry a credential with -32016, naming the detector and path, never the value", () => {
    const guard = new ToolRulesGuard({ server: "s", tools: tools({}), now: () => 0, arguments: { mode: "enforcing" } });
    const outcome = guard.fromClient(callWith(4, { text: `key ${AWS_ID}` }));
    expect(outcome.toServer).toBeUndefined();
    expect(JSON.parse(outcome.toClient!)).toMatchObject({
      id: 4,
      error: { code: -32016, data: { code: "HANGAR_GATEWAY_ARGUMENT_REFUSED", detectors: ["aws-access-key"], findings: [{ detector: "aws-access-key", path: "$.text", encoding: "plain" }] } },
    });
    expect(outcome.toClient).not.toContain(AWS_ID);
    expect(outcome.refused?.error.code).toBe("HANGAR_GATEWAY_ARGUMENT_REFUSED");
    const plain = callWith(5, { text: "hello" });
    expect(guard.fromClient(plain)).toEqual({ toServer: plain });
  });

  it("OBSERVING passes the call on and reports it as flagged; without the option nothing is scanned", () => {
    const line = callWith(6, { text: `key ${AWS_ID}` });
    const observing = new ToolRulesGuard({ server: "s", tools: tools({}), now: () => 0, arguments: { mode: "observing" } }).fromClient(line);
    expect(observing).toEqual({ toServer: line, flagged: { tool: "echo", findings: [{ detector: "aws-access-key", path: "$.text", encoding: "plain" }] } });
    expect(new ToolRulesGuard({ server: "s", tools: tools({}), now: () => 0 }).fromClient(line)).toEqual({ toServer: line });
  });
});

describe("LineFilterStream", () => {
  async function through(chunks: Buffer[], map: (line: string) => string | undefined, maxLine = 1024): Promise<{ out: Buffer; oversize: number[] }> {
    const oversize: number[] = [];
    const stream = new LineFilterStream(map, { maxLine, onOversize: (n) => oversize.push(n) });
    const out: Buffer[] = [];
    stream.on("data", (b: Buffer) => out.push(b));
    const done = new Promise((resolve) => stream.on("end", resolve));
    for (const c of chunks) stream.write(c);
    stream.end();
    await done;
    return { out: Buffer.concat(out), oversize };
  }

  it("joins lines split across chunks (inside a UTF-8 character too) and keeps unchanged lines byte for byte", async () => {
    const input = Buffer.concat([Buffer.from('{"a":"é"}\r\n'), Buffer.from([0xff, 0x20, 0x72, 0x0a]), Buffer.from('{"b":"€"}\nlast')]);
    const cuts = [3, 8, 12, 20, 21, input.length];
    const chunks = cuts.map((end, i) => input.subarray(i === 0 ? 0 : cuts[i - 1], end));
    const seen: string[] = [];
    const { out } = await through(chunks, (l) => (seen.push(l), l));
    // The last line had no newline; it gets one.
    expect(out.equals(Buffer.concat([input, Buffer.from("\n")]))).toBe(true);
    expect(seen).toEqual(['{"a":"é"}\r', "\ufffd r", '{"b":"€"}', "last"]);
  });

  it("rewrites or drops lines, and drops a line past maxLine whole without buffering it", async () => {
    const { out, oversize } = await through([Buffer.from("keep\ndrop\nchange\n"), Buffer.from("x".repeat(600)), Buffer.from("x".repeat(600)), Buffer.from("\nafter\n")], (l) =>
      l === "drop" ? undefined : l === "change" ? "changed" : l,
    );
    expect(out.toString()).toBe("keep\nchanged\nafter\n");
    expect(oversize).toEqual([1200]);
  });
});

describe("a real SDK client and server through pipeGuardedStdio", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  async function session(rules: Policy["tools"]): Promise<{ client: Client; calls: string[]; refused: string[] }> {
    const calls: string[] = [];
    const server = new McpServer({ name: "fixture", version: "1.0.0" });
    for (const name of ["echo", "delete_entities", "delete_all"]) {
      server.registerTool(name, { description: name, inputSchema: { text: z.string().optional() } }, async () => {
        calls.push(name);
        return { content: [{ type: "text", text: `${name} ran` }] };
      });
    }
    const [clientIn, clientOut, serverIn, serverOut] = [new PassThrough(), new PassThrough(), new PassThrough(), new PassThrough()];
    await server.connect(new StdioServerTransport(serverIn, serverOut));
    const refused: string[] = [];
    const unpipe = pipeGuardedStdio(new ToolRulesGuard({ server: "fixture", tools: rules, now: () => Date.now() }), { fromClient: clientIn, toClient: clientOut, toServer: serverIn, fromServer: serverOut }, { onRefused: (tool) => refused.push(tool) });
    const client = new Client({ name: "test", version: "0.0.0" });
    await client.connect(new StreamClientTransport(clientOut, clientIn));
    cleanup = async () => {
      await client.close();
      unpipe();
      await server.close();
    };
    return { client, calls, refused };
  }

  it("lists only what the policy allows and refuses the rest with an MCP error naming the rule; the server never sees the call", async () => {
    const { client, calls, refused } = await session(tools({ deny: ["delete_*"] }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["echo"]);
    const err = await client.callTool({ name: "delete_entities", arguments: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err).toMatchObject({ code: -32010, data: { code: "HANGAR_GATEWAY_DENIED", permission: 'fixture:tools.deny "delete_*"', tool: "delete_entities" } });
    expect((err as Error).message).toMatch(/^MCP error -32010: tool "delete_\w+" of server "\w+" is refused by its policy \(tools.deny "delete_\*"\)$/);
    expect(await client.callTool({ name: "echo", arguments: {} })).toMatchObject({ content: [{ text: "echo ran" }] });
    expect(calls).toEqual(["echo"]);
    expect(refused).toEqual(["delete_entities"]);
  });

  it("answers calls past tools.rateLimit with the rate-limit error", async () => {
    const { client, calls } = await session(tools({ rateLimit: { perMinute: 2 } }));
    await client.callTool({ name: "echo", arguments: {} });
    await client.callTool({ name: "delete_all", arguments: {} });
    const err = await client.callTool({ name: "echo", arguments: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: -32011, data: { code: "HANGAR_GATEWAY_RATE_LIMITED", permission: "tools.rateLimit" } });
    expect(calls).toEqual(["echo", "delete_all"]);
  });
});
