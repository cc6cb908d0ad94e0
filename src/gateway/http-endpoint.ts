import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import type { Server as McpServer } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "pino";
import { RateLimiter } from "../core/gateway/rate-limiter.js";
import type { AuditWriter } from "./audit-writer.js";
import type { Gateway } from "./gateway.js";
import type { GatewayMetrics } from "./gateway-metrics.js";
import { createSessionServer } from "./mcp-endpoint.js";
import { METRICS_CONTENT_TYPE } from "./metrics-registry.js";
import { ProcessMetrics } from "./process-metrics.js";
import type { TokenStore } from "./token-file.js";

/**
 * The gateway over streamable HTTP. Every request needs `Authorization: Bearer <token>`;
 * a missing or unknown token gets 401 before anything else runs. A session belongs to
 * the identity that opened it: another identity's token cannot drive it (403).
 *   POST/GET/DELETE /mcp   the MCP endpoint (one SDK transport + Server per session)
 *   GET /metrics           Prometheus text exposition: the gateway's metrics, then the
 *                          process and Node.js defaults (same bearer tokens, unless public)
 * Probes answer without a token, and say nothing about servers or identities:
 *   GET /healthz           200 while the process serves (liveness)
 *   GET /readyz            200 when ready to take calls, else 503 with the reasons
 */
export interface HttpEndpointOptions {
  readonly gateway: Gateway;
  readonly tokens: TokenStore;
  readonly metrics: GatewayMetrics;
  readonly audit: AuditWriter;
  readonly version: string;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly maxBodyBytes?: number;
  readonly maxSessions?: number;
  /** Serve /metrics without a bearer token (hangar.yaml `gateway.metrics.public`); default false. */
  readonly metricsPublic?: boolean;
  /** Process and runtime metrics appended to /metrics, run from listen() to close(); false for none. */
  readonly processMetrics?: ProcessMetrics | false;
}

interface Session {
  readonly identity: string;
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
}

export const MCP_PATH = "/mcp";
export const METRICS_PATH = "/metrics";
export const HEALTHZ_PATH = "/healthz";
export const READYZ_PATH = "/readyz";

export class HttpEndpoint {
  private readonly http: HttpServer;
  private readonly sessions = new Map<string, Session>();
  private readonly authAuditBudget: RateLimiter;
  private suppressedAuthFailures = 0;
  private readonly now: () => number;
  private readonly processMetrics: ProcessMetrics | undefined;
  private closing = false;

  constructor(private readonly options: HttpEndpointOptions) {
    this.now = options.now ?? Date.now;
    this.processMetrics = options.processMetrics === false ? undefined : (options.processMetrics ?? new ProcessMetrics());
    // A stream of bad tokens must not fill the audit log: at most 60 records a minute, then a count.
    this.authAuditBudget = new RateLimiter(60, this.now());
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.error({ err }, "HTTP request failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
        else res.end();
      });
    });
  }

  async listen(host: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(port, host, () => {
        this.http.off("error", reject);
        resolve();
      });
    });
    this.processMetrics?.start();
    return this.url;
  }

  get url(): string {
    const address = this.http.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}${MCP_PATH}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.processMetrics?.close();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.server.close().catch(() => undefined)));
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://gateway").pathname;
    if (path === HEALTHZ_PATH || path === READYZ_PATH) return this.probe(req, res, path);
    if (path !== MCP_PATH && path !== METRICS_PATH) return sendJson(res, 404, { error: `not found; the MCP endpoint is ${MCP_PATH}` });
    if (path === METRICS_PATH && this.options.metricsPublic === true) return this.serveMetrics(req, res);
    const identity = await this.authenticate(req, res, path);
    if (identity === undefined) return;
    if (path === METRICS_PATH) return this.serveMetrics(req, res);

    const sessionHeader = req.headers["mcp-session-id"];
    if (typeof sessionHeader === "string") {
      const session = this.sessions.get(sessionHeader);
      if (session === undefined) return sendRpcError(res, 404, -32001, "session not found; initialize a new one");
      if (session.identity !== identity) return sendRpcError(res, 403, -32003, "this session belongs to another identity");
      const body = req.method === "POST" ? await this.readBody(req, res) : undefined;
      if (body === INVALID) return;
      await session.transport.handleRequest(req, res, body);
      return;
    }

    if (req.method !== "POST") return sendRpcError(res, 400, -32000, "no mcp-session-id header; POST an initialize request first");
    const body = await this.readBody(req, res);
    if (body === INVALID) return;
    if (!isInitializeRequest(body)) return sendRpcError(res, 400, -32000, "no mcp-session-id header; the first request of a session must be initialize");
    if (this.sessions.size >= (this.options.maxSessions ?? 1000)) return sendRpcError(res, 503, -32000, "too many sessions");
    await this.openSession(identity, req, res, body);
  }

  private serveMetrics(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== "GET") return sendJson(res, 405, { error: "use GET" });
    res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
    res.end(this.options.metrics.render() + (this.processMetrics?.render() ?? ""));
  }

  private async probe(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") return sendJson(res, 405, { error: "use GET" });
    const reasons = path === HEALTHZ_PATH ? [] : await this.notReadyReasons();
    const body = reasons.length === 0 ? { status: path === HEALTHZ_PATH ? "ok" : "ready" } : { status: "not ready", reasons };
    res.writeHead(reasons.length === 0 ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : JSON.stringify(body));
  }

  /**
   * Why the gateway should not be sent calls now; empty when ready. Servers start on demand,
   * so a COLD server is ready to serve; only a gateway whose every server is DEAD is not.
   */
  private async notReadyReasons(): Promise<string[]> {
    const reasons: string[] = [];
    if (this.closing) reasons.push("shutting down");
    const { gateway, audit } = this.options;
    const now = this.now();
    const states = gateway.serverNames.map((name) => gateway.server(name)?.status(now).state);
    if (states.length === 0 || states.some((s) => s === undefined)) reasons.push("the configured servers are not loaded");
    else if (states.every((s) => s === "DEAD")) reasons.push("every server is DEAD (restart budget spent or shut down)");
    if (!(await writable(audit.path))) reasons.push("the audit log is not writable");
    return reasons;
  }

  private async openSession(identity: string, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const { gateway, version, logger } = this.options;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      // Runs inside handleRequest below, after `server` exists.
      onsessioninitialized: (id) => {
        this.sessions.set(id, { identity, transport, server });
        logger.info({ identity, session: id }, "HTTP session opened");
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && this.sessions.get(id)?.transport === transport) this.sessions.delete(id);
    };
    const server = createSessionServer(gateway, () => ({ identity, ...(transport.sessionId !== undefined ? { session: transport.sessionId } : {}) }), { version, logger });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  private async authenticate(req: IncomingMessage, res: ServerResponse, path: string): Promise<string | undefined> {
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const token = match?.[1];
    const identity = token !== undefined ? await this.options.tokens.identityFor(token) : undefined;
    if (identity !== undefined) return identity;
    const reason = header === undefined ? "missing bearer token" : token === undefined ? "malformed Authorization header" : "unknown bearer token";
    this.auditAuthFailure(reason, req, path);
    res.writeHead(401, {
      "content-type": "application/json",
      "www-authenticate": header === undefined ? 'Bearer realm="hangar"' : 'Bearer realm="hangar", error="invalid_token"',
    });
    res.end(JSON.stringify({ error: reason }));
    return undefined;
  }

  private auditAuthFailure(reason: string, req: IncomingMessage, path: string): void {
    if (!this.authAuditBudget.tryTake(this.now()).allowed) {
      this.suppressedAuthFailures += 1;
      return;
    }
    const suppressed = this.suppressedAuthFailures;
    this.suppressedAuthFailures = 0;
    this.options.audit.write({
      kind: "policy",
      data: { action: "auth-failed", detail: { reason, path, method: req.method ?? "", remote: req.socket.remoteAddress ?? "", ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}) } },
    });
  }

  private async readBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const limit = this.options.maxBodyBytes ?? 4 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        sendRpcError(res, 413, -32600, `request body larger than ${limit} bytes`);
        req.destroy();
        return INVALID;
      }
      chunks.push(chunk as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      sendRpcError(res, 400, -32700, "parse error: the body is not JSON");
      return INVALID;
    }
  }
}

const INVALID = Symbol("invalid body");

/** The audit database and its folder (SQLite writes its journal beside it) can be written. */
async function writable(file: string): Promise<boolean> {
  try {
    await Promise.all([access(file, constants.W_OK), access(dirname(file), constants.W_OK)]);
    return true;
  } catch {
    return false;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function sendRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { jsonrpc: "2.0", error: { code, message }, id: null });
}
