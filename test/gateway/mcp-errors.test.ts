import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { HangarError } from "../../src/core/errors.js";
import { bareMcpMessage, toMcpError } from "../../src/gateway/mcp-errors.js";
import { connectClient, FAST_GATEWAY, openTestGateway, project, type Project } from "./support/harness.js";

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an MCP error, got ${String(err)}`);
  return err;
}

/** A real SDK client and server over an in-memory pair; every tool call fails with `thrown`. */
async function clientOfFailingServer(thrown: () => unknown): Promise<Client & AsyncDisposable> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = new Server({ name: "failing", version: "1" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [] }));
  server.setRequestHandler(CallToolRequestSchema, () => {
    throw thrown();
  });
  await server.connect(serverSide);
  const client = new Client({ name: "t", version: "1" });
  await client.connect(clientSide);
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.close() });
}

describe("MCP errors", () => {
  it("carry a stable numeric code and the Hangar code with its data", () => {
    const err = toMcpError(new HangarError("HANGAR_GATEWAY_DENIED", "no", { data: { permission: "a__b" } }));
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(-32010);
    expect(err.data).toEqual({ code: "HANGAR_GATEWAY_DENIED", permission: "a__b" });
  });

  it("pass an upstream's error on with its code, message and data, without the SDK's prefixes", () => {
    // What the gateway's client holds when an SDK-based upstream threw McpError(-32602, "bad params", ...).
    const upstream = new McpError(-32602, "MCP error -32602: bad params", { field: "x" });
    expect(upstream.message).toBe("MCP error -32602: MCP error -32602: bad params");
    const passed = toMcpError(upstream);
    expect(passed).toBeInstanceOf(McpError);
    expect(passed).toMatchObject({ code: -32602, message: "bad params", data: { field: "x" } });
    // Only the SDK's own prefix for that code is removed.
    expect(bareMcpMessage(-32602, "MCP error -1: x")).toBe("MCP error -1: x");
  });

  it("reach an SDK client with the MCP prefix once (a refusal and a passed-on upstream error)", async () => {
    await using refused = await clientOfFailingServer(() => toMcpError(new HangarError("HANGAR_GATEWAY_DENIED", 'identity "alice" lacks permission "fx__echo"')));
    expect((await rpcError(refused.callTool({ name: "x" }))).message).toBe('MCP error -32010: identity "alice" lacks permission "fx__echo"');

    await using passed = await clientOfFailingServer(() => toMcpError(new McpError(-32602, "MCP error -32602: bad params")));
    const err = await rpcError(passed.callTool({ name: "x" }));
    expect(err.code).toBe(-32602);
    expect(err.message).toBe("MCP error -32602: bad params");
  });
});

describe("the gateway's refusals, as a client sees them", () => {
  let p: Project;
  beforeEach(() => {
    p = project();
  });
  afterEach(() => p[Symbol.dispose]());

  it("say 'MCP error <code>:' once", async () => {
    await p.policy("fx");
    p.writeConfig({ servers: ["policies/fx.yaml"], identity: "dev", gateway: FAST_GATEWAY });
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const refused = await rpcError(client.callTool({ name: "fx__echo", arguments: { message: "x" } }));
    expect(refused.code).toBe(-32013);
    expect(refused.message).toMatch(/^MCP error -32013: server "fx" is not approved; /);
    expect(refused.message.split("MCP error").length - 1).toBe(1);
  });
});
