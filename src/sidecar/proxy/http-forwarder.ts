import { Agent, request, type ClientRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { permits, type Verdict } from "../../core/decision.js";
import type { SidecarContext } from "../sidecar-context.js";
import { parseAuthority, type Authority } from "./authority.js";
import type { EgressGate } from "./egress-gate.js";
import { clientOf, egressEvent, newAttempt, type AttemptFacts } from "./egress-event.js";
import { refusalHeaders, refusalText } from "./refusal.js";

/**
 * Plain-HTTP forwarding for the explicit proxy: an absolute-form request
 * (`GET http://name:port/path`) is decided on its URL authority, resolved by the sidecar,
 * and forwarded over a keep-alive agent to `http://<resolved ip>:<port>`, in origin form,
 * with the Host the client named. Hop-by-hop headers and proxy credentials stay here.
 *
 * Built on node:http alone (both parsers are llhttp, so framing is never ours to get
 * wrong); headers travel as raw pairs, in the client's order and spelling.
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "transfer-encoding"]);
// Framing the two Node ends recompute; never dropped because a Connection header names them.
const FRAMING = new Set(["host", "content-length", "transfer-encoding"]);
const NO_TOKENS: ReadonlySet<string> = new Set();

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

/** Header names a Connection header lists in `raw` (lower-case), beyond the hop-by-hop set. */
function connectionTokens(raw: readonly string[]): ReadonlySet<string> {
  let tokens: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length !== 10 || key.toLowerCase() !== "connection") continue;
    for (const t of raw[i + 1]!.split(",")) {
      const name = t.trim().toLowerCase();
      if (name.length > 0 && !FRAMING.has(name) && !HOP_BY_HOP.has(name)) (tokens ??= new Set()).add(name);
    }
  }
  return tokens ?? NO_TOKENS;
}

/**
 * The end-to-end headers of `raw` (a response's) as pairs: hop-by-hop ones, and any a
 * Connection header names, are dropped; Node frames the body again for the client.
 */
export function endToEndHeaders(raw: readonly string[]): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(key) || listed.has(key)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * The request headers sent upstream, in one pass over the raw pairs: end to end only,
 * Transfer-Encoding kept (it frames the body), and the Host the client named in the URL.
 * `hasBody` follows the framing llhttp used: a body only with Transfer-Encoding or a
 * non-zero Content-Length.
 */
function upstreamRequest(raw: readonly string[], hostHeader: string): { headers: string[]; hasBody: boolean } {
  const listed = connectionTokens(raw);
  const headers: string[] = ["Host", hostHeader];
  let hasBody = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (key === "transfer-encoding") hasBody = true;
    else if (key === "content-length") hasBody ||= Number(raw[i + 1]) !== 0;
    else if (key === "host" || HOP_BY_HOP.has(key) || listed.has(key)) continue;
    headers.push(raw[i]!, raw[i + 1]!);
  }
  return { headers, hasBody };
}

export class HttpForwarder {
  constructor(
    private readonly ctx: SidecarContext,
    private readonly gate: EgressGate,
    // LIFO keeps a few connections hot; noDelay because a proxy must never sit on a small write.
    private readonly agent: Agent = new Agent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 64, noDelay: true }),
  ) {}

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
    if (name !== undefined) facts.name = this.gate.normalise(name) ?? name;
    if (ip !== undefined) facts.ip = ip;

    // Decided, counted and resolved by its normalised form (decide() would normalise it again).
    const dest = { protocol: "http" as const, port: authority.port, name: facts.name, ip, connectionsPerMinute: this.gate.count(facts.name, authority.port) };
    const first = this.gate.check(dest);
    if (!permits(first)) return this.refuse(res, facts, first, 403);
    const route = await this.gate.route(dest, first);
    if (!route.permitted) return this.refuse(res, facts, route.verdict, 403);
    facts.ip = route.ip;
    this.ctx.events.emit(egressEvent(this.ctx, facts, route.verdict));
    if (res.destroyed || req.socket.destroyed) {
      this.ctx.events.emit(egressEvent(this.ctx, facts, route.verdict, { error: "client closed before the upstream request" }));
      return;
    }
    this.forward(req, res, facts, route.verdict, route.ip, target);
  }

  /** Drops pooled upstream connections. */
  destroy(): void {
    this.agent.destroy();
  }

  private forward(req: IncomingMessage, res: ServerResponse, facts: AttemptFacts, verdict: Verdict, ip: string, target: AbsoluteHttpTarget): void {
    const started = this.ctx.now();
    let bytesUp = 0;
    let bytesDown = 0;
    let error: Error | undefined;
    let upstream: ClientRequest | undefined;
    res.once("close", () => {
      if (!res.writableFinished) upstream?.destroy();
      this.ctx.events.emit(egressEvent(this.ctx, facts, verdict, { bytesUp, bytesDown, durationMs: this.ctx.now() - started, ...(error ? { error } : {}) }));
    });
    const failed = (err: Error): void => {
      error ??= err;
      if (res.destroyed) return;
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end("Hangar: the upstream request failed.\n");
      else res.destroy();
    };
    const { headers, hasBody } = upstreamRequest(req.rawHeaders, target.hostHeader);
    try {
      upstream = request({ host: ip, port: target.authority.port, method: req.method, path: target.path, headers, setHost: false, agent: this.agent });
    } catch (err) {
      // Node refused to write the request (an invalid header or path): nothing was sent.
      return failed(err as Error);
    }
    const sent = upstream;
    sent.on("error", failed);
    sent.once("response", (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEndHeaders(up.rawHeaders));
      // By hand rather than pipe(): the same backpressure, without pipe's per-request listener set.
      up.on("data", (chunk: Buffer) => {
        bytesDown += chunk.length;
        if (!res.write(chunk)) {
          up.pause();
          res.once("drain", () => up.resume());
        }
      });
      up.once("end", () => res.end());
      up.on("error", (err) => {
        error ??= err;
        res.destroy();
      });
    });
    if (!hasBody) {
      sent.end();
      return;
    }
    req.on("data", (chunk: Buffer) => {
      bytesUp += chunk.length;
      if (!sent.write(chunk)) {
        req.pause();
        sent.once("drain", () => req.resume());
      }
    });
    req.once("end", () => sent.end());
    req.on("error", (err) => {
      error ??= err;
      sent.destroy();
    });
  }

  private refuse(res: ServerResponse, facts: AttemptFacts, verdict: Verdict, status: number): void {
    this.ctx.events.emit(egressEvent(this.ctx, facts, verdict));
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...refusalHeaders(verdict) }).end(refusalText(verdict, facts.host ?? facts.name));
  }
}
