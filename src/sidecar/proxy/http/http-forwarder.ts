import type { Socket } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";
import { checkRequestShape, driftFieldNames } from "../../../core/baseline/request-drift.js";
import { permits, type Verdict } from "../../../core/decision.js";
import { DEFAULT_MAX_BODY_BYTES, requestShape, shapeEventFields, type RequestShape } from "../../../core/request-shape.js";
import type { SidecarContext } from "../../sidecar-context.js";
import type { EgressGate } from "../egress-gate.js";
import { clientOf, emitEgress, newAttempt, type AttemptFacts } from "../egress-event.js";
import { endConnection, httpResponse } from "../http-reply.js";
import { refusalHeaders, refusalText } from "../refusal.js";
import { chunkOf, LAST_CHUNK, type BodyFraming } from "./body-framing.js";
import { exchange, type ExchangeEnd } from "./exchange.js";
import { headerValue, type HttpHead } from "./http-head.js";
import type { HttpRequest } from "./http-session.js";
import { requestTarget, withoutQueryValues, type RequestOrigin } from "./request-target.js";
import { upgradeHeaders, upstreamRequest } from "./hop-by-hop.js";
import { headerNames, type BodyPrefix } from "./request-body.js";
import { UpstreamPool, type UpstreamConnection, type UpstreamTarget } from "./upstream-pool.js";
import { relayUpgraded } from "./upgrade.js";
import { requestSecrets } from "../../secrets/request-secrets.js";

/**
 * Every HTTP request the sidecar can see is decided here, one by one, whichever way it came:
 * the explicit proxy (absolute form), a transparent port (Host), plaintext inside a CONNECT
 * tunnel, or TLS the sidecar terminated. A permitted request is resolved by the sidecar and
 * forwarded on a pooled connection to `<resolved ip>:<port>`, in origin form, with the Host
 * that was decided, in the sidecar's own framing (http-session.ts read it; exchange.ts sends
 * it and relays the answer). Hop-by-hop headers and proxy credentials stay here
 * (hop-by-hop.ts); a body is read up to a bound before the decision.
 *
 * The session hands requests over one at a time, and once one is refused the connection
 * ends: a keep-alive or pipelined request cannot ride on the decision of the one before it.
 */
const MALFORMED: Verdict = { verdict: "block", reasons: ["malformed-request"] };


/** A request that was decided and may be forwarded. */
interface Decided {
  readonly facts: AttemptFacts;
  readonly verdict: Verdict;
  readonly target: UpstreamTarget;
  readonly hostHeader: string;
  readonly path: string;
  /** The body read before deciding (its shape was decided on); `truncated`: more follows. */
  readonly body?: BodyPrefix;
  /** The raw headers with injected secrets written in (secrets/request-secrets.ts). */
  readonly rawHeaders?: readonly string[];
}

// Certificate failures of a re-originated TLS connection: a refusal of its own, never skipped.
const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME_MISMATCH/;
// What a secret written into a header must never hold: it would end the field or the head.
const UNSAFE_VALUE = /[\r\n\0]/;
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

export type ForwardPath = AttemptFacts["path"];

export class HttpForwarder {
  private readonly pool: UpstreamPool;
  private tlsContext: SecureContext | undefined;

  constructor(
    private readonly ctx: SidecarContext,
    private readonly gate: EgressGate,
    /** Roots trusted when TLS is re-originated (inspected destinations); none: nothing is inspected. */
    private readonly upstreamCa?: readonly string[],
    connectTimeoutMs?: number,
  ) {
    this.pool = new UpstreamPool({
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(upstreamCa !== undefined ? { tlsContext: () => (this.tlsContext ??= createSecureContext({ ca: [...upstreamCa] })) } : {}),
    });
  }

  /** Decides one request and, when permitted, forwards it. True when the connection may carry another. */
  async handle(req: HttpRequest, origin: RequestOrigin, path: ForwardPath): Promise<boolean> {
    const decided = await this.decide(req.head, req.framing, req, origin, path, (facts, verdict, status) => this.refuse(req.client, facts, verdict, status));
    if (decided === undefined) return false;
    if (req.client.destroyed) {
      emitEgress(this.ctx, decided.facts, decided.verdict, { error: "client closed before the upstream request" });
      return false;
    }
    return this.forward(req, decided);
  }

  /**
   * A request asking for a protocol upgrade (WebSocket): decided like any other, once; after
   * the upstream's 101 the connection is opaque bytes both ways. `rest` is what the client
   * sent after the request; it goes upstream only after the 101.
   */
  async handleUpgrade(head: HttpHead, socket: Socket, rest: Buffer, origin: RequestOrigin, path: ForwardPath): Promise<void> {
    const decided = await this.decide(head, { kind: "none" }, { client: socket }, origin, path, (facts, verdict, status) => this.refuse(socket, facts, verdict, status));
    if (decided === undefined) return;
    const started = this.ctx.now();
    let conn: UpstreamConnection;
    try {
      conn = await this.pool.acquire(decided.target, true);
    } catch (err) {
      return void this.failed(socket, decided, decided.verdict, err as Error, started, { bytesUp: 0, bytesDown: 0 });
    }
    const text = requestHeadText(head.method, decided.path, upgradeHeaders(decided.rawHeaders ?? head.rawHeaders, decided.hostHeader));
    const end = await exchange({ conn, client: socket, method: head.method, head: Buffer.from(text, "latin1"), clientKeepAlive: false, upgrade: true });
    if (end.kind === "failed" && !end.answered) return void this.failed(socket, decided, decided.verdict, end.error, started, { bytesUp: 0, bytesDown: 0 });
    if (end.kind === "upgraded") {
      const stats = await relayUpgraded(socket, conn, end.head, end.rest, rest);
      emitEgress(this.ctx, decided.facts, decided.verdict, { durationMs: this.ctx.now() - started, ...stats });
      return;
    }
    conn.socket.destroy();
    this.closed(socket, decided, decided.verdict, end, started, { bytesUp: 0, bytesDown: end.kind === "done" ? end.bytesDown : 0 });
    // Declined: the answer was relayed, and nothing else the client sent is forwarded.
    endConnection(socket);
  }

  /** Drops pooled upstream connections. */
  destroy(): void {
    this.pool.destroy();
  }

  /**
   * The request's destination, decided (both before and after resolution). Undefined when it
   * was refused: `refuse` has then answered the client with `status`.
   */
  private async decide(
    head: HttpHead,
    framing: BodyFraming,
    req: Pick<HttpRequest, "client"> & Partial<Pick<HttpRequest, "body">>,
    origin: RequestOrigin,
    path: ForwardPath,
    refuse: (facts: AttemptFacts, verdict: Verdict, status: number) => void,
  ): Promise<Decided | undefined> {
    const facts = newAttempt(this.ctx, path, "http", clientOf(req.client));
    facts.method = head.method;
    facts.url = withoutQueryValues(head.target);
    if (origin.kind === "tunnel" && origin.connect !== undefined) facts.connect = origin.connect;
    if (origin.kind === "inspected") {
      facts.sni = origin.sni;
      if (origin.connect !== undefined) facts.connect = origin.connect;
    }
    const refuseWith = (verdict: Verdict, status: number): undefined => {
      emitEgress(this.ctx, facts, verdict);
      refuse(facts, verdict, status);
      return undefined;
    };
    const parsed = requestTarget(origin, head.target, head.rawHeaders, (n) => this.gate.normalise(n));
    if (!parsed.ok) return refuseWith(MALFORMED, 400);
    const target = parsed.target;
    if (target.hostHeader !== undefined) facts.host = target.hostHeader;
    facts.port = target.port;
    let name = target.name;
    const owner = name === undefined && target.ip === undefined ? this.gate.portOwner(target.port) : undefined;
    if (owner?.name !== undefined) name = owner.name;
    if (name !== undefined) facts.name = this.gate.normalise(name) ?? name;
    if (target.ip !== undefined) facts.ip = target.ip;

    // Decided, counted and resolved by its normalised form (decide() would normalise it again).
    const dest = {
      protocol: "http" as const,
      port: target.port,
      name: facts.name,
      ip: target.ip,
      ...(target.hostMismatch ? { hostMismatch: true } : {}),
      method: head.method,
      target: target.path,
      connectionsPerMinute: this.gate.count(facts.name, target.port),
    };
    const withBody = framing.kind !== "none";
    if (withBody) {
      // Decide on the head before waiting for a body: a refused destination costs no read. Capture
      // (replay, quarantine) refuses everything, but records each request's shape first.
      const headOnly = this.gate.check(dest, owner?.ambiguous === true);
      if (!permits(headOnly) && headOnly.reasons[0] !== "capture") return refuseWith(headOnly, 403);
      // A client that waits to be told to send its body is told so only now.
      if (head.version === "1.1" && headerValue(head.rawHeaders, "expect")?.toLowerCase() === "100-continue") req.client.write(CONTINUE);
    }
    // Read the body (up to a bound) and decide on the request's shape, so a drifting field is
    // refused before any byte of it is forwarded. A bodiless request is decided once, here.
    const bound = this.ctx.inspectBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const body = withBody && req.body !== undefined ? await req.body.readPrefix(bound) : undefined;
    if (withBody && body === undefined) return undefined;
    const shape = this.shapeOf(head, target.path, body, bound);
    facts.shape = shapeEventFields(shape);
    // Secrets: sentinels written into their declared header, leaks and credential shapes decided on.
    const secrets = requestSecrets(this.ctx, facts, head.rawHeaders, origin.kind === "inspected", target.path, body);
    // Added members first, here and below (see eslint.config.js).
    const shaped = { shape, ...dest, ...secrets.found };
    const decision = this.gate.checkAndRoute(shaped, owner?.ambiguous === true);
    this.noteDrift(facts, decision.first, shape);
    const route = decision.route instanceof Promise ? await decision.route : decision.route;
    if (!route.permitted) return refuseWith(route.verdict, 403);
    facts.ip = route.ip;
    emitEgress(this.ctx, facts, route.verdict);
    return {
      facts,
      verdict: route.verdict,
      target: { ip: route.ip, port: target.port, ...(origin.kind === "inspected" ? { servername: origin.name } : {}) },
      hostHeader: target.hostHeader ?? facts.name ?? route.ip,
      path: target.path,
      ...(body !== undefined ? { body } : {}),
      ...(secrets.rawHeaders !== undefined ? { rawHeaders: secrets.rawHeaders } : {}),
    };
  }

  private shapeOf(head: HttpHead, target: string, body: BodyPrefix | undefined, maxBodyBytes: number): RequestShape {
    const encoding = headerValue(head.rawHeaders, "content-encoding");
    const type = headerValue(head.rawHeaders, "content-type");
    return requestShape({
      method: head.method,
      target,
      headerNames: headerNames(head.rawHeaders),
      ...(type !== undefined ? { contentType: type } : {}),
      ...(encoding !== undefined ? { contentEncoding: encoding } : {}),
      ...(body !== undefined ? { body: body.bytes, bodyTruncated: body.truncated } : {}),
    }, { maxBodyBytes });
  }

  /** Names the fields a drifting request added, for its event (names only, never values). */
  private noteDrift(facts: AttemptFacts, verdict: Verdict, shape: RequestShape): void {
    if (!verdict.reasons.some((r) => r === "drift-new-request-field" || r === "drift-new-http-route" || r === "drift-body-not-inspected")) return;
    const requests = this.ctx.decisionContext().baseline?.requests;
    if (requests === undefined || facts.name === undefined || facts.port === undefined) return;
    facts.driftFields = driftFieldNames(checkRequestShape(requests, `${facts.name}:${facts.port}`, shape));
  }

  /** Sends the decided request and relays its response. True when the client connection carries on. */
  private async forward(req: HttpRequest, d: Decided): Promise<boolean> {
    const started = this.ctx.now();
    const chunked = req.framing.kind === "chunked";
    const headers = upstreamRequest(d.rawHeaders ?? req.head.rawHeaders, d.hostHeader);
    if (d.rawHeaders !== undefined && d.rawHeaders.some((v, i) => i % 2 === 1 && UNSAFE_VALUE.test(v))) {
      return this.failed(req.client, d, d.verdict, new Error("a secret written into a header holds CR, LF or NUL"), started, { bytesUp: 0, bytesDown: 0 });
    }
    // The head and the body read so far go in one write; the rest of the body streams after it.
    const parts: Buffer[] = [Buffer.from(requestHeadText(req.head.method, d.path, headers), "latin1")];
    const prefix = d.body;
    if (prefix !== undefined && prefix.bytes.length > 0) parts.push(...(chunked ? chunkOf(prefix.bytes) : [prefix.bytes]));
    if (chunked && req.body.complete) parts.push(LAST_CHUNK);
    const first = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    let bytesUp = prefix?.bytes.length ?? 0;
    const streamRest = !req.body.complete
      ? (up: Socket): Promise<boolean> =>
          req.body
            .pipe(
              (data) => {
                bytesUp += data.length;
                return chunked ? writeAll(up, chunkOf(data)) : up.write(data);
              },
              () => new Promise((resolve) => up.once("drain", resolve)),
            )
            .then((ok) => {
              if (ok && chunked) up.write(LAST_CHUNK);
              return ok;
            })
      : undefined;

    let end: ExchangeEnd | undefined;
    let error: Error | undefined;
    for (let attempt = 0; end === undefined; attempt++) {
      let conn: UpstreamConnection;
      try {
        const got = this.pool.acquire(d.target);
        conn = got instanceof Promise ? await got : got;
      } catch (err) {
        error = err as Error;
        break;
      }
      const result = await exchange({ conn, client: req.client, method: req.head.method, head: first, clientKeepAlive: req.keepAlive, clientVersion: req.head.version, ...(streamRest !== undefined ? { streamRest } : {}), release: (c) => this.pool.release(c) });
      // A kept-alive connection the upstream had closed meanwhile: sent again once, on a new one,
      // when nothing reached the client and the whole request is still in hand.
      if (result.kind === "stale" && attempt === 0 && streamRest === undefined) continue;
      end = result.kind === "stale" ? { kind: "failed", error: new Error("the upstream closed the connection before answering"), answered: false, bytesDown: 0 } : result;
    }
    if (end === undefined) return this.failed(req.client, d, d.verdict, error!, started, { bytesUp, bytesDown: 0 });
    if (end.kind === "failed" && !end.answered) return this.failed(req.client, d, d.verdict, end.error, started, { bytesUp, bytesDown: 0 });
    this.closed(req.client, d, d.verdict, end, started, { bytesUp, bytesDown: end.kind === "done" || end.kind === "failed" ? end.bytesDown : 0 });
    return end.kind === "done" && end.clientKeep;
  }

  private closed(client: Socket, d: Decided, verdict: Verdict, end: ExchangeEnd, started: number, bytes: { bytesUp: number; bytesDown: number }): void {
    const error = end.kind === "failed" ? end.error : undefined;
    if (end.kind === "failed" && !client.destroyed) client.destroy();
    emitEgress(this.ctx, d.facts, verdict, { durationMs: this.ctx.now() - started, ...bytes, ...(error !== undefined ? { error } : {}) });
  }

  /** Nothing of a response reached the client: a 502 (a refusal, when the upstream's certificate failed). */
  private failed(client: Socket, d: Decided, verdict: Verdict, err: Error, started: number, bytes: { bytesUp: number; bytesDown: number }): false {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    const certificate = d.target.servername !== undefined && CERT_ERRORS.test(code);
    const final: Verdict = certificate ? { verdict: "block", reasons: ["upstream-certificate"], ...(verdict.rule ? { rule: verdict.rule } : {}) } : verdict;
    emitEgress(this.ctx, d.facts, final, { durationMs: this.ctx.now() - started, error: err, ...bytes });
    const text = certificate ? `Hangar refused the upstream ${d.target.servername}: its certificate did not verify (${code}).\n` : "Hangar: the upstream request failed.\n";
    endConnection(client, httpResponse(502, text, certificate ? refusalHeaders(final) : {}));
    return false;
  }

  /** The refusal closes the connection: whatever the client sent after this request is never forwarded. */
  private refuse(client: Socket, facts: AttemptFacts, verdict: Verdict, status: number): void {
    endConnection(client, httpResponse(status, refusalText(verdict, facts.host ?? facts.name), refusalHeaders(verdict)));
  }
}

function requestHeadText(method: string, path: string, headers: readonly string[]): string {
  let text = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${text}\r\n`;
}

function writeAll(socket: Socket, parts: readonly Buffer[]): boolean {
  let ok = true;
  for (const p of parts) ok = socket.write(p) && ok;
  return ok;
}
