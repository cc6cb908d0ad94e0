import { Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import httpProxy from "http-proxy";
import { permits, type Verdict } from "../../core/decision.js";
import { normaliseHostName } from "../../core/names.js";
import type { SidecarContext } from "../sidecar-context.js";
import { parseAuthority, type Authority } from "./authority.js";
import type { EgressGate } from "./egress-gate.js";
import { clientOf, egressEvent, newAttempt, type AttemptFacts } from "./egress-event.js";
import { refusalHeaders, refusalText } from "./refusal.js";

/**
 * Plain-HTTP forwarding for the explicit proxy: an absolute-form request
 * (`GET http://name:port/path`) is decided on its URL authority, resolved by the sidecar,
 * and forwarded by `http-proxy` over a keep-alive agent to `http://<resolved ip>:<port>`,
 * in origin form, with the Host the client named. Hop-by-hop and proxy credentials stay here.
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "transfer-encoding"]);
// Framing the two Node ends recompute; never dropped because a Connection header names them.
const FRAMING = new Set(["host", "content-length", "transfer-encoding"]);

interface Exchange {
  readonly facts: AttemptFacts;
  readonly verdict: Verdict;
  readonly started: number;
  bytesUp: number;
  bytesDown: number;
  proxyReq?: ClientRequest;
  error?: Error;
}

export interface AbsoluteHttpTarget {
  readonly authority: Authority & { readonly port: number };
  /** The authority without userinfo, as the Host header upstream. */
  readonly hostHeader: string;
  /** Origin-form request target: path and query, never the fragment. */
  readonly path: string;
}

/** `http://host[:port]/path?query` as a proxy request target; undefined for anything else. */
export function parseAbsoluteHttpTarget(url: string): AbsoluteHttpTarget | undefined {
  if (url.length < 8 || url.slice(0, 7).toLowerCase() !== "http://") return undefined;
  const rest = url.slice(7);
  const end = rest.search(/[/?#]/);
  const rawAuthority = end === -1 ? rest : rest.slice(0, end);
  let path = end === -1 ? "/" : rest.slice(end);
  const hash = path.indexOf("#");
  if (hash !== -1) path = path.slice(0, hash);
  if (!path.startsWith("/")) path = `/${path}`;
  const hostHeader = rawAuthority.slice(rawAuthority.lastIndexOf("@") + 1);
  const authority = parseAuthority(hostHeader);
  if (authority === undefined) return undefined;
  return { authority: { ...authority, port: authority.port ?? 80 }, hostHeader, path };
}

export function stripHopByHop(headers: IncomingHttpHeaders): void {
  const listed = typeof headers.connection === "string" ? headers.connection.split(",") : [];
  for (const token of listed) {
    const name = token.trim().toLowerCase();
    if (name.length > 0 && !FRAMING.has(name)) delete headers[name];
  }
  for (const name of HOP_BY_HOP) if (name !== "transfer-encoding") delete headers[name];
}

export class HttpForwarder {
  private readonly proxy = httpProxy.createProxyServer({});
  private readonly exchanges = new WeakMap<IncomingMessage, Exchange>();

  constructor(
    private readonly ctx: SidecarContext,
    private readonly gate: EgressGate,
    private readonly agent: Agent = new Agent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 64 }),
  ) {
    this.proxy.on("error", (err) => this.ctx.logger.debug({ err }, "http-proxy error"));
    this.proxy.on("proxyReq", (proxyReq: ClientRequest, req: IncomingMessage) => {
      const ex = this.exchanges.get(req);
      if (ex !== undefined) ex.proxyReq = proxyReq;
    });
    this.proxy.on("proxyRes", (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => this.respond(proxyRes, req, res));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const facts = newAttempt(this.ctx, "explicit", "http", clientOf(req.socket));
    facts.method = req.method ?? "GET";
    facts.url = req.url ?? "";
    const target = parseAbsoluteHttpTarget(req.url ?? "");
    if (target === undefined) {
      // Origin-form (or https://) sent to a proxy: not a request we can route.
      return this.refuse(res, facts, { verdict: "block", reasons: ["malformed-request"] }, 400);
    }
    const { authority } = target;
    facts.host = target.hostHeader;
    facts.port = authority.port;
    const name = authority.isIp ? undefined : authority.host;
    const ip = authority.isIp ? authority.host : undefined;
    if (name !== undefined) facts.name = normaliseHostName(name) ?? name;
    if (ip !== undefined) facts.ip = ip;

    const dest = { protocol: "http" as const, port: authority.port, name, ip, connectionsPerMinute: this.gate.count(name, authority.port) };
    const first = this.gate.check(dest);
    if (!permits(first)) return this.refuse(res, facts, first, 403);
    const route = await this.gate.route(dest, first);
    if (!route.permitted) return this.refuse(res, facts, route.verdict, 403);
    facts.ip = route.ip;
    this.ctx.events.emit(egressEvent(this.ctx, facts, route.verdict));

    const ex: Exchange = { facts, verdict: route.verdict, started: this.ctx.now(), bytesUp: 0, bytesDown: 0 };
    if (res.destroyed || req.socket.destroyed) {
      this.ctx.events.emit(egressEvent(this.ctx, facts, ex.verdict, { error: "client closed before the upstream request" }));
      return;
    }
    res.once("close", () => {
      if (!res.writableFinished) ex.proxyReq?.destroy();
      const { bytesUp, bytesDown, error } = ex;
      this.ctx.events.emit(egressEvent(this.ctx, facts, ex.verdict, { bytesUp, bytesDown, durationMs: this.ctx.now() - ex.started, ...(error ? { error } : {}) }));
    });
    stripHopByHop(req.headers);
    req.headers.host = target.hostHeader;
    req.url = target.path;
    this.exchanges.set(req, ex);
    req.on("data", (chunk: Buffer) => {
      ex.bytesUp += chunk.length;
    });
    this.proxy.web(
      req,
      res,
      { target: { protocol: "http:", host: route.ip, port: authority.port }, agent: this.agent, selfHandleResponse: true, xfwd: false },
      (err) => {
        ex.error ??= err;
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end("Hangar: the upstream request failed.\n");
        else res.destroy();
      },
    );
  }

  /** Drops pooled upstream connections. */
  destroy(): void {
    this.agent.destroy();
  }

  private respond(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void {
    const ex = this.exchanges.get(req);
    const raw = proxyRes.rawHeaders;
    const listed = new Set(
      (typeof proxyRes.headers.connection === "string" ? proxyRes.headers.connection.split(",") : []).map((t) => t.trim().toLowerCase()),
    );
    const headers: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const key = raw[i]!.toLowerCase();
      if (HOP_BY_HOP.has(key) || (listed.has(key) && !FRAMING.has(key))) continue;
      headers.push(raw[i]!, raw[i + 1]!);
    }
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
    if (ex !== undefined) {
      proxyRes.on("data", (chunk: Buffer) => {
        ex.bytesDown += chunk.length;
      });
    }
    proxyRes.on("error", (err) => {
      if (ex !== undefined) ex.error ??= err;
      res.destroy();
    });
    proxyRes.pipe(res);
  }

  private refuse(res: ServerResponse, facts: AttemptFacts, verdict: Verdict, status: number): void {
    this.ctx.events.emit(egressEvent(this.ctx, facts, verdict));
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...refusalHeaders(verdict) }).end(refusalText(verdict, facts.host ?? facts.name));
  }
}
