import type { Protocol, Verdict } from "../../core/decision.js";
import type { RequestShapeEventFields } from "../../core/request-shape.js";
import { EVENT_SCHEMA_VERSION, type EgressEvent } from "../../core/events.js";
import type { SpliceStats } from "./splice.js";
import type { SidecarContext } from "../sidecar-context.js";
import { takesEncodedEvents } from "../event-writer.js";
import { IsoTimestamps, membersText, quote, quoteList } from "../event-text.js";

/**
 * What one connection attempt has revealed so far. The listener fills it in as it learns
 * (SNI, Host, the IP it dialled) and turns it into a `decide` event and, for a connection
 * that was spliced, a `close` event with the same id.
 */
export interface AttemptFacts {
  readonly id: string;
  readonly path: "transparent" | "explicit";
  protocol: Protocol;
  client?: string;
  name?: string;
  sni?: string;
  host?: string;
  connect?: string;
  method?: string;
  url?: string;
  port?: number;
  ip?: string;
  /** One HTTP request's shape: names only, never values. */
  shape?: RequestShapeEventFields;
  /** The fields a drifting request added (`body Bcc`). */
  driftFields?: readonly string[];
  /** Secrets written into this request's declared header (names only). */
  injected?: readonly string[];
}

// Observed strings come from the client: bound what reaches the event stream.
const MAX_FIELD = 512;
const MAX_URL = 2048;
const clip = (s: string | undefined, max = MAX_FIELD): string | undefined =>
  s === undefined ? undefined : s.length > max ? `${s.slice(0, max)}…` : s;

export function newAttempt(ctx: SidecarContext, path: AttemptFacts["path"], protocol: Protocol, client?: string): AttemptFacts {
  return { id: ctx.newId(), path, protocol, ...(client !== undefined ? { client } : {}) };
}

export function clientOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string | undefined {
  return socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort ?? 0}`;
}

type CloseFacts = Omit<Partial<SpliceStats>, "error"> & { readonly error?: Error | string };

/**
 * Emits the event of `facts` (see egressEvent): as its JSON line, built from fragments, when
 * the sink takes lines (the event writer); as the object otherwise (the redacting sink).
 */
export function emitEgress(ctx: SidecarContext, facts: AttemptFacts, verdict: Verdict, close?: CloseFacts): void {
  const sink = ctx.events;
  if (takesEncodedEvents(sink)) sink.emitEncoded(encoder.line(ctx, facts, verdict, close));
  else sink.emit(egressEvent(ctx, facts, verdict, close));
}

export function egressEvent(
  ctx: SidecarContext,
  facts: AttemptFacts,
  verdict: Verdict,
  close?: CloseFacts,
): EgressEvent {
  // Built field by field (no spread, no delete): this runs once or twice per connection.
  const e: { -readonly [K in keyof EgressEvent]: EgressEvent[K] } = {
    v: EVENT_SCHEMA_VERSION,
    ts: new Date(ctx.now()).toISOString(),
    id: facts.id,
    type: "egress",
    phase: close === undefined ? "decide" : "close",
    server: ctx.server,
    verdict: verdict.verdict,
    reasons: verdict.reasons,
    protocol: facts.protocol,
    path: facts.path,
  };
  if (verdict.rule !== undefined) e.rule = verdict.rule;
  if (facts.name !== undefined) e.name = clip(facts.name);
  if (facts.port !== undefined) e.port = facts.port;
  if (facts.ip !== undefined) e.ip = facts.ip;
  if (facts.sni !== undefined) e.sni = clip(facts.sni);
  if (facts.host !== undefined) e.host = clip(facts.host);
  if (facts.connect !== undefined) e.connect = clip(facts.connect);
  if (facts.method !== undefined) e.method = clip(facts.method, 32);
  if (facts.url !== undefined) e.url = clip(facts.url, MAX_URL);
  if (facts.shape !== undefined && close === undefined) Object.assign(e, facts.shape);
  if (facts.driftFields !== undefined && facts.driftFields.length > 0) e.driftFields = facts.driftFields;
  if (verdict.leaks !== undefined) e.secretLeaks = verdict.leaks;
  if (verdict.credentials !== undefined) e.credentials = verdict.credentials;
  if (facts.injected !== undefined) e.injected = facts.injected;
  if (facts.client !== undefined) e.client = facts.client;
  if (close !== undefined) {
    e.bytesUp = close.bytesUp ?? 0;
    e.bytesDown = close.bytesDown ?? 0;
    e.durationMs = close.durationMs ?? 0;
    if (close.error !== undefined) e.error = clip(typeof close.error === "string" ? close.error : close.error.message);
  }
  return e;
}

/**
 * JSON.stringify(egressEvent(...)), the same text byte for byte, field order included
 * (test/sidecar/proxy/egress-event.test.ts compares the two), without building the object:
 * on the proxy's hot path two events per request were a tenth of the sidecar's busy time.
 */
export class EgressEventEncoder {
  private readonly clock = new IsoTimestamps();
  private server: string | undefined;
  private serverText = "";
  /** `"verdict":…,"reasons":[…]` of the one-reason verdicts, by verdict and reason. */
  private readonly verdicts = new Map<string, Map<string, string>>();

  line(ctx: SidecarContext, facts: AttemptFacts, verdict: Verdict, close?: CloseFacts): string {
    if (ctx.server !== this.server) {
      this.server = ctx.server;
      this.serverText = JSON.stringify(ctx.server);
    }
    let out = `{"v":${EVENT_SCHEMA_VERSION},"ts":"${this.clock.text(ctx.now())}","id":${quote(facts.id)},"type":"egress","phase":${close === undefined ? '"decide"' : '"close"'},"server":${this.serverText},${this.verdictText(verdict)},"protocol":${quote(facts.protocol)},"path":${quote(facts.path)}`;
    if (verdict.rule !== undefined) out += `,"rule":${quote(verdict.rule)}`;
    if (facts.name !== undefined) out += `,"name":${quote(clip(facts.name)!)}`;
    if (facts.port !== undefined) out += `,"port":${number(facts.port)}`;
    if (facts.ip !== undefined) out += `,"ip":${quote(facts.ip)}`;
    if (facts.sni !== undefined) out += `,"sni":${quote(clip(facts.sni)!)}`;
    if (facts.host !== undefined) out += `,"host":${quote(clip(facts.host)!)}`;
    if (facts.connect !== undefined) out += `,"connect":${quote(clip(facts.connect)!)}`;
    if (facts.method !== undefined) out += `,"method":${quote(clip(facts.method, 32)!)}`;
    if (facts.url !== undefined) out += `,"url":${quote(clip(facts.url, MAX_URL)!)}`;
    if (facts.shape !== undefined && close === undefined) {
      const shape = membersText(facts.shape);
      if (shape.length > 0) out += `,${shape}`;
    }
    if (facts.driftFields !== undefined && facts.driftFields.length > 0) out += `,"driftFields":${quoteList(facts.driftFields)}`;
    if (verdict.leaks !== undefined) out += `,"secretLeaks":${JSON.stringify(verdict.leaks)}`;
    if (verdict.credentials !== undefined) out += `,"credentials":${JSON.stringify(verdict.credentials)}`;
    if (facts.injected !== undefined) out += `,"injected":${JSON.stringify(facts.injected)}`;
    if (facts.client !== undefined) out += `,"client":${quote(facts.client)}`;
    if (close !== undefined) {
      out += `,"bytesUp":${number(close.bytesUp ?? 0)},"bytesDown":${number(close.bytesDown ?? 0)},"durationMs":${number(close.durationMs ?? 0)}`;
      if (close.error !== undefined) out += `,"error":${quote(clip(typeof close.error === "string" ? close.error : close.error.message)!)}`;
    }
    return `${out}}`;
  }

  private verdictText(v: Verdict): string {
    if (v.reasons.length !== 1) return `"verdict":${quote(v.verdict)},"reasons":${JSON.stringify(v.reasons)}`;
    let byVerdict = this.verdicts.get(v.verdict);
    if (byVerdict === undefined) this.verdicts.set(v.verdict, (byVerdict = new Map()));
    const reason = v.reasons[0]!;
    let text = byVerdict.get(reason);
    if (text === undefined) byVerdict.set(reason, (text = `"verdict":${quote(v.verdict)},"reasons":[${quote(reason)}]`));
    return text;
  }
}

/** A number as JSON.stringify writes it (null for NaN and the infinities). */
const number = (n: number): string => (Number.isFinite(n) ? String(n) : "null");

const encoder = new EgressEventEncoder();
