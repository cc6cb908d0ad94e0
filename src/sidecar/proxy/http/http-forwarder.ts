import { Agent, request, type ClientRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import { createSecureContext } from "node:tls";
import type { Socket } from "node:net";
import { checkRequestShape, driftFieldNames } from "../../../core/baseline/request-drift.js";
import { permits, type Verdict } from "../../../core/decision.js";
import { DEFAULT_MAX_BODY_BYTES, requestShape, shapeEventFields, type RequestShape } from "../../../core/request-shape.js";
import type { SidecarContext } from "../../sidecar-context.js";
import type { EgressGate } from "../egress-gate.js";
import { clientOf, egressEvent, newAttempt, type AttemptFacts } from "../egress-event.js";
import { endConnection, httpResponse } from "../http-reply.js";
import { refusalHeaders, refusalText } from "../refusal.js";
import { requestTarget, withoutQueryValues, type RequestOrigin } from "./request-target.js";
import { endToEndHeaders, unframeable, upstreamRequest } from "./hop-by-hop.js";
import { hasBody, headerNames, readBodyPrefix, type BodyPrefix } from "./request-body.js";
import { forwardUpgrade } from "./upgrade.js";
import { requestSecrets } from "../../secrets/request-secrets.js";

/**
 * Every HTTP request the sidecar can see is decided here, one by one, whichever way it came:
 * the explicit proxy (absolute form), a transparent port (Host), or plaintext inside a
 * CONNECT tunnel. A permitted request is resolved by the sidecar and forwarded over a
 * keep-alive agent to `http://<resolved ip>:<port>`, in origin form, with the Host that was
 * decided. Hop-by-hop headers and proxy credentials stay here (hop-by-hop.ts); a body is read
 * up to a bound before the decision (request-body.ts).
 *
 * Requests on one connection are decided in order, and once one is refused nothing after it
 * on that connection is forwarded: a keep-alive or pipelined request cannot ride on the
 * decision of the one before it.
 *
 * Built on node:http alone (both parsers are llhttp, so framing is never ours to get
 * wrong); headers travel as raw pairs, in the client's order and spelling.
 */
const MALFORMED: Verdict = { verdict: "block", reasons: ["malformed-request"] };

export { parseAbsoluteHttpTarget, type AbsoluteHttpTarget } from "./request-target.js";
export { endToEndHeaders } from "./hop-by-hop.js";

/** One connection's place in line: the decision of its last request, and whether one was refused. */
interface Turns {
  last: Promise<void>;
  refused: boolean;
}

/** A request that was decided and may be forwarded. */
interface Decided {
  readonly facts: AttemptFacts;
  readonly verdict: Verdict;
  readonly ip: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly path: string;
  /** Re-originated TLS (an inspected destination): the name the upstream certificate must carry. */
  readonly tls?: { readonly servername: string };
  /** The body read before deciding (its shape was decided on); `truncated`: more follows. */
  readonly body?: BodyPrefix;
  /** The raw headers with injected secrets written in (secrets/request-secrets.ts). */
  readonly rawHeaders?: string[];
}

// Certificate failures of a re-originated TLS connection: a refusal of its own, never skipped.
const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME_MISMATCH/;

export type ForwardPath = AttemptFacts["path"];

export class HttpForwarder {
  private readonly turns = new WeakMap<object, Turns>();
  private tlsAgent: TlsAgent | undefined;

  constructor(
    private readonly ctx: SidecarContext,
    private readonly gate: EgressGate,
    /** Roots trusted when TLS is re-originated (inspected destinations); none: nothing is inspected. */
    private readonly upstreamCa?: readonly string[],
    // LIFO keeps a few connections hot; noDelay because a proxy must never sit on a small write.
    private readonly agent: Agent = new Agent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 64, noDelay: true }),
  ) {}

  /** Decides one request and, when permitted, forwards it. Resolves once it is decided. */
  handle(req: IncomingMessage, res: ServerResponse, origin: RequestOrigin, path: ForwardPath): Promise<void> {
    return this.inTurn(req.socket, async () => {
      const decided = await this.decide(req, origin, path, (facts, verdict, status) => this.refuse(res, facts, verdict, status));
      if (decided === undefined) return false;
      if (res.destroyed || req.socket.destroyed) {
        this.ctx.events.emit(egressEvent(this.ctx, decided.facts, decided.verdict, { error: "client closed before the upstream request" }));
        return true;
      }
      this.forward(req, res, decided);
      return true;
    });
  }

  /**
   * A request asking for a protocol upgrade (WebSocket): decided like any other, once; after
   * the upstream's 101 the connection is opaque bytes both ways.
   */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, origin: RequestOrigin, path: ForwardPath): Promise<void> {
    return this.inTurn(socket, async () => {
      const decided = await this.decide(req, origin, path, (facts, verdict, status) => this.refuseSocket(socket, facts, verdict, status));
      if (decided === undefined) return false;
      const { ip, port, hostHeader, path: target } = decided;
      const tls = decided.tls === undefined ? {} : { tls: { servername: decided.tls.servername, ca: this.upstreamCa ?? [] } };
      const stats = await forwardUpgrade(req, socket, head, { ip, port, hostHeader, path: target, ...tls }, () => this.ctx.now());
      this.ctx.events.emit(egressEvent(this.ctx, decided.facts, decided.verdict, stats));
      return true;
    });
  }

  /**
   * Runs `work` after the connection's earlier requests were decided; `work` says whether it
   * let its request through. After a refusal, later requests are never forwarded: the refusal
   * closes the connection, and they are left unanswered.
   */
  private async inTurn(socket: object, work: () => Promise<boolean>): Promise<void> {
    let turns = this.turns.get(socket);
    if (turns === undefined) this.turns.set(socket, (turns = { last: Promise.resolve(), refused: false }));
    const previous = turns.last;
    let release!: () => void;
    turns.last = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      if (turns.refused) return;
      if (!(await work())) turns.refused = true;
    } finally {
      release();
    }
  }

  /**
   * The request's destination, decided (both before and after resolution). Undefined when it
   * was refused: `refuse` has then answered the client with `status`.
   */
  private async decide(
    req: IncomingMessage,
    origin: RequestOrigin,
    path: ForwardPath,
    refuse: (facts: AttemptFacts, verdict: Verdict, status: number) => void,
  ): Promise<Decided | undefined> {
    const facts = newAttempt(this.ctx, path, "http", clientOf(req.socket));
    facts.method = req.method ?? "GET";
    facts.url = withoutQueryValues(req.url ?? "");
    if (origin.kind === "tunnel" && origin.connect !== undefined) facts.connect = origin.connect;
    if (origin.kind === "inspected") {
      facts.sni = origin.sni;
      if (origin.connect !== undefined) facts.connect = origin.connect;
    }
    const refuseWith = (verdict: Verdict, status: number): undefined => {
      this.ctx.events.emit(egressEvent(this.ctx, facts, verdict));
      refuse(facts, verdict, status);
      return undefined;
    };
    if (unframeable(req.rawHeaders)) {
      // llhttp refuses this only after it has delivered the head, and its client-error handler
      // has then already answered 400 with an event: the request is never decided or forwarded.
      if (req.socket.writableEnded) return undefined;
      return refuseWith(MALFORMED, 400);
    }
    const parsed = requestTarget(origin, req.url ?? "", req.rawHeaders, (n) => this.gate.normalise(n));
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
      method: req.method ?? "GET",
      target: target.path,
      connectionsPerMinute: this.gate.count(facts.name, target.port),
    };
    const withBody = hasBody(req);
    if (withBody) {
      // Decide on the head before waiting for a body: a refused destination costs no read. Capture
      // (replay, quarantine) refuses everything, but records each request's shape first.
      const headOnly = this.gate.check(dest, owner?.ambiguous === true);
      if (!permits(headOnly) && headOnly.reasons[0] !== "capture") return refuseWith(headOnly, 403);
    }
    // Read the body (up to a bound) and decide on the request's shape, so a drifting field is
    // refused before any byte of it is forwarded. A bodiless request is decided once, here.
    const bound = this.ctx.inspectBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const body = withBody ? await readBodyPrefix(req, bound) : undefined;
    if (withBody && body === undefined) return undefined;
    const shape = this.shapeOf(req, target.path, body, bound);
    facts.shape = shapeEventFields(shape);
    // Secrets: sentinels written into their declared header, leaks and credential shapes decided on.
    const secrets = requestSecrets(this.ctx, facts, req, origin.kind === "inspected", target.path, body);
    const shaped = { ...dest, shape, ...secrets.found };
    const first = this.gate.check(shaped, owner?.ambiguous === true);
    this.noteDrift(facts, first, shape);
    if (!permits(first)) return refuseWith(first, 403);
    const route = await this.gate.route(shaped, first);
    if (!route.permitted) return refuseWith(route.verdict, 403);
    facts.ip = route.ip;
    this.ctx.events.emit(egressEvent(this.ctx, facts, route.verdict));
    return {
      facts,
      verdict: route.verdict,
      ip: route.ip,
      port: target.port,
      hostHeader: target.hostHeader ?? facts.name ?? route.ip,
      path: target.path,
      ...(origin.kind === "inspected" ? { tls: { servername: origin.name } } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(secrets.rawHeaders !== undefined ? { rawHeaders: secrets.rawHeaders } : {}),
    };
  }

  private shapeOf(req: IncomingMessage, target: string, body: BodyPrefix | undefined, maxBodyBytes: number): RequestShape {
    const encoding = req.headers["content-encoding"];
    const type = req.headers["content-type"];
    return requestShape({
      method: req.method ?? "GET",
      target,
      headerNames: headerNames(req.rawHeaders),
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

  /** Drops pooled upstream connections. */
  destroy(): void {
    this.agent.destroy();
    this.tlsAgent?.destroy();
  }

  private upstreamTls(): TlsAgent {
    if (this.upstreamCa === undefined) throw new Error("an inspected request without an upstream trust store");
    // One secure context built once: handing the agent `ca` itself would make it join every
    // root certificate into its pool key on every request (measured: a quarter of the CPU).
    this.tlsAgent ??= new TlsAgent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 64, secureContext: createSecureContext({ ca: [...this.upstreamCa] }), rejectUnauthorized: true });
    return this.tlsAgent;
  }

  private forward(req: IncomingMessage, res: ServerResponse, decided: Decided): void {
    const { facts } = decided;
    let verdict = decided.verdict;
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
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (decided.tls !== undefined && CERT_ERRORS.test(code)) verdict = { verdict: "block", reasons: ["upstream-certificate"], ...(verdict.rule ? { rule: verdict.rule } : {}) };
      if (res.destroyed) return;
      if (res.headersSent) return void res.destroy();
      const text = verdict.verdict === "block" ? `Hangar refused the upstream ${decided.tls?.servername ?? ""}: its certificate did not verify (${code}).\n` : "Hangar: the upstream request failed.\n";
      res.writeHead(502, { "content-type": "text/plain; charset=utf-8", ...(verdict.verdict === "block" ? refusalHeaders(verdict) : {}) }).end(text);
    };
    const { headers, hasBody } = upstreamRequest(decided.rawHeaders ?? req.rawHeaders, decided.hostHeader);
    try {
      const options = { host: decided.ip, port: decided.port, method: req.method, path: decided.path, headers, setHost: false };
      upstream = decided.tls === undefined ? request({ ...options, agent: this.agent }) : tlsRequest({ ...options, servername: decided.tls.servername, agent: this.upstreamTls() });
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
    if (decided.body !== undefined) {
      // Decided on this prefix; it goes first, and the rest (past the bound) streams after it.
      bytesUp += decided.body.bytes.length;
      if (decided.body.bytes.length > 0) sent.write(decided.body.bytes);
      if (!decided.body.truncated) {
        sent.end();
        return;
      }
    } else if (!hasBody) {
      sent.end();
      return;
    }
    req.resume();
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

  /** The refusal closes the connection: whatever the client sent after this request is never forwarded. */
  private refuse(res: ServerResponse, facts: AttemptFacts, verdict: Verdict, status: number): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", Connection: "close", ...refusalHeaders(verdict) }).end(refusalText(verdict, facts.host ?? facts.name));
  }

  private refuseSocket(socket: Socket, facts: AttemptFacts, verdict: Verdict, status: number): void {
    endConnection(socket, httpResponse(status, refusalText(verdict, facts.host ?? facts.name), refusalHeaders(verdict)));
  }
}
