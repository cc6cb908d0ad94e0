import type { Protocol, Verdict } from "../../core/decision.js";
import type { RequestShapeEventFields } from "../../core/request-shape.js";
import { EVENT_SCHEMA_VERSION, type EgressEvent } from "../../core/events.js";
import type { SpliceStats } from "./splice.js";
import type { SidecarContext } from "../sidecar-context.js";

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

export function egressEvent(
  ctx: SidecarContext,
  facts: AttemptFacts,
  verdict: Verdict,
  close?: Omit<Partial<SpliceStats>, "error"> & { readonly error?: Error | string },
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
