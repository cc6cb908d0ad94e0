import { mkdtemp, rm, stat } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { parseBridgeArgs, parseListen } from "../../src/bridge/bridge-args.js";
import { StdioHttpBridge } from "../../src/bridge/stdio-http-bridge.js";
import { unixSocketFetch } from "../../src/bridge/unix-socket-fetch.js";
import { isHangarError } from "../../src/core/errors.js";
import { fixtureServerCommand } from "../gateway/support/fixture-server.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
});

async function startFixtureBridge(listen: string, env: Record<string, string> = {}): Promise<StdioHttpBridge> {
  const [command, ...args] = await fixtureServerCommand();
  const bridge = await StdioHttpBridge.start({ listen: parseListen(listen), command: command!, args, env: { ...process.env, FIXTURE_NAME: "bridged", ...env } });
  cleanups.push(() => bridge.close());
  return bridge;
}

async function connect(transport: StreamableHTTPClientTransport): Promise<Client> {
  const client = new Client({ name: "bridge-test", version: "1.0.0" });
  await client.connect(transport);
  cleanups.push(() => client.close());
  return client;
}

describe("stdio↔HTTP bridge", () => {
  it("serves a stdio server as streamable HTTP on loopback TCP: tools, calls, the child's env, a prompt", async () => {
    const bridge = await startFixtureBridge("127.0.0.1:0");
    expect(bridge.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const client = await connect(new StreamableHTTPClientTransport(new URL(bridge.url)));
    expect(client.getServerVersion()?.name).toBe("fixture-bridged");
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain("echo");
    const result = await client.callTool({ name: "echo", arguments: { message: "through the bridge" } });
    expect(result.content).toEqual([{ type: "text", text: "bridged: through the bridge" }]);
    // The child's environment is the bridge's: what the container sets reaches the server.
    const env = await client.callTool({ name: "whoami", arguments: { variable: "FIXTURE_NAME" } });
    expect(env.content).toEqual([{ type: "text", text: "bridged" }]);
    const prompt = await client.getPrompt({ name: "greet", arguments: { who: "Ada" } });
    expect(prompt.messages[0]?.content).toEqual({ type: "text", text: "Say hello to Ada from bridged." });
  });

  it("serves over a Unix socket, reached with unixSocketFetch (the Docker sandbox's path)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-bridge-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, "mcp.sock");
    const bridge = await startFixtureBridge(`unix:${socket}`);
    expect(bridge.address).toBe(socket);
    // Writable by all: a control plane that is not the sandbox's uid can connect.
    expect((await stat(socket)).mode & 0o777).toBe(0o777);
    const client = await connect(new StreamableHTTPClientTransport(new URL(bridge.url), { fetch: unixSocketFetch(socket) }));
    const sum = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } });
    expect(sum.content).toEqual([{ type: "text", text: "42" }]);
    const slow = await client.callTool({ name: "slow", arguments: { ms: 50 } });
    expect(slow.content).toEqual([{ type: "text", text: "slept 50 ms" }]);
  });

  it("ends with its child: a crashing server's exit code is the bridge's, and the endpoint goes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-bridge-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, "mcp.sock");
    const bridge = await startFixtureBridge(`unix:${socket}`);
    const client = await connect(new StreamableHTTPClientTransport(new URL(bridge.url), { fetch: unixSocketFetch(socket) }));
    await expect(client.callTool({ name: "crash", arguments: {} })).rejects.toThrow(/exited with code 7/);
    expect(await bridge.exited).toBe(7);
    await bridge.close();
    await expect(stat(socket)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a second session: one child, one MCP session", async () => {
    const bridge = await startFixtureBridge("127.0.0.1:0");
    await connect(new StreamableHTTPClientTransport(new URL(bridge.url)));
    const second = new Client({ name: "second", version: "1.0.0" });
    await expect(second.connect(new StreamableHTTPClientTransport(new URL(bridge.url)))).rejects.toThrow(/already initialized/i);
  });

  it("answers 404 outside /mcp, naming the endpoint", async () => {
    const bridge = await startFixtureBridge("127.0.0.1:0");
    const [host, port] = bridge.address.split(":");
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ host, port: Number(port), path: "/other" }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      })
        .on("error", reject)
        .end();
    });
    expect(status).toBe(404);
    expect(body).toContain("/mcp");
  });

  it("close() ends the child: stdin closed, exit awaited", async () => {
    const bridge = await startFixtureBridge("127.0.0.1:0");
    await bridge.close();
    await bridge.close();
    expect(await bridge.exited).toBe(0);
  });

  it("a command that cannot start is a typed error naming it", async () => {
    const err = await StdioHttpBridge.start({ listen: parseListen("127.0.0.1:0"), command: "/nonexistent/hangar-server", args: [] }).catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_USAGE")).toBe(true);
    expect((err as Error).message).toContain("/nonexistent/hangar-server");
  });
});

describe("bridge arguments", () => {
  it("reads --listen and the command after --", () => {
    expect(parseBridgeArgs(["--listen", "0.0.0.0:8080", "--", "node", "/app/server.js", "--flag"])).toEqual({
      listen: { kind: "tcp", host: "0.0.0.0", port: 8080 },
      command: "node",
      args: ["/app/server.js", "--flag"],
    });
    expect(parseBridgeArgs(["--listen=unix:/run/hangar-mcp/mcp.sock", "--", "srv"]).listen).toEqual({ kind: "unix", path: "/run/hangar-mcp/mcp.sock" });
  });

  it.each([
    [["--", "node"], /--listen is required/],
    [["--listen", "0.0.0.0:8080"], /no server command after "--"/],
    [["--listen", "8080", "--", "node"], /"8080" is not "host:port"/],
    [["--listen", "0.0.0.0:70000", "--", "node"], /"0.0.0.0:70000" is not "host:port"/],
    [["--listen", "unix:relative.sock", "--", "node"], /must be absolute/],
    [["--port", "1", "--", "node"], /unknown argument "--port"/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseBridgeArgs(argv)).toThrow(message);
  });
});

describe("unixSocketFetch", () => {
  it("bounds what the sandbox side may send: an event longer than maxEventBytes fails the body, shorter events pass", async () => {
    const { createServer } = await import("node:http");
    const dir = await mkdtemp(join(tmpdir(), "hangar-bridge-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, "big.sock");
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      // Many small events pass; then one event of 3000 bytes with no blank line in it.
      for (let i = 0; i < 50; i++) res.write(`data: ${"x".repeat(100)}\n\n`);
      if (req.url === "/big") res.write(`data: ${"y".repeat(3000)}`);
      res.end("\n\n");
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const fetch = unixSocketFetch(socket, { maxEventBytes: 1000 });
    const small = await fetch("http://x/small");
    expect((await small.text()).length).toBe(50 * 108 + 2);
    const big = await fetch("http://x/big");
    const err = (await big.text().catch((e: unknown) => e)) as Error;
    expect(`${err.message} ${String((err.cause as Error | undefined)?.message)}`).toMatch(/longer than 1000 bytes/);
  });
});
