import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import { HangarError } from "../core/errors.js";
import { BRIDGE_MCP_PATH, type BridgeListen } from "./bridge-args.js";

/**
 * The stdio↔HTTP bridge: runs a stdio MCP server as its child and serves it as one MCP
 * streamable-HTTP session (the SDK's transports on both sides, messages relayed as they are).
 * It is the server's entrypoint wrapper in a Kubernetes pod (TCP 8080) and, with
 * `runtime.transport: http`, in a Docker sandbox (a Unix socket the control plane shares).
 * One child, one session: a second `initialize` is refused by the SDK, as the child would.
 */
export interface BridgeOptions {
  readonly listen: BridgeListen;
  readonly command: string;
  readonly args: readonly string[];
  /** The child's environment; default this process's (the container's: policy env, secrets, proxies). */
  readonly env?: NodeJS.ProcessEnv;
  /** Reports what the bridge cannot hand to anyone (a relay that failed); default nothing. */
  readonly onError?: (error: Error) => void;
  /** After close() ends the child's stdin, how long it gets to exit before SIGTERM. Default 2000 ms. */
  readonly exitGraceMs?: number;
}

type Child = ChildProcessByStdio<Writable, Readable, null>;

export class StdioHttpBridge implements AsyncDisposable {
  /** The child's exit code (128 + the signal's number when a signal ended it). */
  readonly exited: Promise<number>;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly child: Child,
    private readonly http: StreamableHTTPServerTransport,
    private readonly listen: BridgeListen,
    private readonly exitGraceMs: number,
    exited: Promise<number>,
  ) {
    this.exited = exited;
  }

  /** Spawns the child, then serves it; a child that fails to spawn or a port that is taken rejects. */
  static async start(options: BridgeOptions): Promise<StdioHttpBridge> {
    const onError = options.onError ?? (() => undefined);
    const child: Child = spawn(options.command, [...options.args], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise<number>((resolve) => {
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0)));
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) =>
        reject(new HangarError("HANGAR_USAGE", `the bridge could not start ${JSON.stringify(options.command)}: ${err.message}`, { cause: err, data: { command: options.command } })),
      );
    });
    // Writes after the child died fail with EPIPE: that is its exit, reported there.
    child.stdin.on("error", onError);

    const stdio = new StdioServerTransport(child.stdout, child.stdin);
    const http = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID });
    const failPending = relay(http, stdio, onError);
    await stdio.start();
    await http.start();
    http.onclose = () => child.stdin.end();

    const server = createServer((req, res) => void serve(http, req, res, onError));
    try {
      await listenOn(server, options.listen);
    } catch (err) {
      child.kill("SIGKILL");
      throw new HangarError("HANGAR_USAGE", `the bridge cannot listen on ${describe(options.listen)}: ${(err as Error).message}`, { cause: err });
    }
    const bridge = new StdioHttpBridge(server, child, http, options.listen, options.exitGraceMs ?? 2000, exited);
    // The child is the server: when it ends, so does the endpoint. Calls in flight get an
    // answer first; a client would otherwise wait for its own timeout.
    void exited.then(async (code) => {
      await failPending(`the MCP server exited with code ${code}`);
      await bridge.close();
    });
    return bridge;
  }

  /** `host:port` of a TCP listener (the real port when 0 was asked for), or the socket's path. */
  get address(): string {
    if (this.listen.kind === "unix") return this.listen.path;
    const a = this.server.address() as AddressInfo;
    return `${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** The MCP endpoint's URL (for a Unix socket, the host part is a placeholder: dial the path). */
  get url(): string {
    return this.listen.kind === "unix" ? `http://localhost${BRIDGE_MCP_PATH}` : `http://${this.address}${BRIDGE_MCP_PATH}`;
  }

  /** Stops serving, ends the child's stdin and waits for it to exit (SIGTERM, then SIGKILL, if it lingers). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const served = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await this.http.close().catch(() => undefined);
      this.child.stdin.end();
      const gone = await Promise.race([this.exited.then(() => true), delay(this.exitGraceMs).then(() => false)]);
      if (!gone) {
        this.child.kill("SIGTERM");
        if (!(await Promise.race([this.exited.then(() => true), delay(this.exitGraceMs).then(() => false)]))) this.child.kill("SIGKILL");
        await this.exited;
      }
      await served;
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Messages pass as they are. A progress notification goes on the stream of the request that
 * asked for it (by its progress token); everything else the child starts (notifications,
 * sampling or elicitation requests) goes on the session's standalone stream. Returns what
 * answers every request still unanswered with an error (the child is gone).
 */
function relay(http: StreamableHTTPServerTransport, stdio: StdioServerTransport, onError: (error: Error) => void): (reason: string) => Promise<void> {
  const byToken = new Map<string | number, RequestId>();
  const tokenOf = new Map<RequestId, string | number>();
  const pending = new Set<RequestId>();
  http.onmessage = (message) => {
    if ("method" in message && "id" in message && message.id !== undefined) pending.add(message.id);
    const token = progressToken(message);
    if (token !== undefined && "id" in message && message.id !== undefined) {
      byToken.set(token, message.id);
      tokenOf.set(message.id, token);
    }
    stdio.send(message).catch(onError);
  };
  stdio.onmessage = (message) => {
    let related: RequestId | undefined;
    if ("id" in message && message.id !== undefined && ("result" in message || "error" in message)) {
      pending.delete(message.id);
      const token = tokenOf.get(message.id);
      if (token !== undefined) byToken.delete(token);
      tokenOf.delete(message.id);
    } else if ("method" in message && message.method === "notifications/progress") {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === "string" || typeof token === "number") related = byToken.get(token);
    }
    http.send(message, related !== undefined ? { relatedRequestId: related } : undefined).catch(onError);
  };
  stdio.onerror = onError;
  http.onerror = onError;
  return async (reason) => {
    const ids = [...pending];
    pending.clear();
    await Promise.all(ids.map((id) => http.send({ jsonrpc: "2.0", id, error: { code: -32000, message: reason } }).catch(onError)));
  };
}

function progressToken(message: JSONRPCMessage): string | number | undefined {
  if (!("method" in message)) return undefined;
  const meta = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta;
  const token = meta?.progressToken;
  return typeof token === "string" || typeof token === "number" ? token : undefined;
}

async function serve(http: StreamableHTTPServerTransport, req: IncomingMessage, res: ServerResponse, onError: (error: Error) => void): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== BRIDGE_MCP_PATH) {
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: `no MCP endpoint at ${path}; it is ${BRIDGE_MCP_PATH}` }));
    return;
  }
  try {
    await http.handleRequest(req, res);
  } catch (err) {
    onError(err as Error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "the bridge failed to handle the request" }));
  }
}

async function listenOn(server: Server, listen: BridgeListen): Promise<void> {
  // A socket left by an earlier bridge in the same folder would make listen fail.
  if (listen.kind === "unix") await rm(listen.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // writableAll: the control plane connecting to the socket need not run as the sandbox's uid.
    if (listen.kind === "unix") server.listen({ path: listen.path, readableAll: true, writableAll: true }, resolve);
    else server.listen({ host: listen.host, port: listen.port }, resolve);
  });
}

const describe = (listen: BridgeListen): string => (listen.kind === "unix" ? `unix:${listen.path}` : `${listen.host}:${listen.port}`);

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
