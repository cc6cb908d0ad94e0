import { EVENT_SCHEMA_VERSION, type EgressEvent } from "../../../src/core/events.js";
import type { AttributedEgressEvent, Observation } from "../../../src/core/baseline/index.js";

/** 2025-03-01T10:00:00.000Z: every test stream starts here, so timestamps are exact. */
export const T0 = Date.parse("2025-03-01T10:00:00.000Z");
export const iso = (ms: number): string => new Date(ms).toISOString();

let counter = 0;

type EventFields = Partial<Omit<EgressEvent, "v" | "ts">> & { readonly at: number; readonly tools?: readonly string[] };

export function event(fields: EventFields): AttributedEgressEvent {
  const { at, tools, ...rest } = fields;
  return {
    v: EVENT_SCHEMA_VERSION,
    ts: iso(at),
    id: rest.id ?? `e${++counter}`,
    type: "egress",
    phase: "decide",
    server: "postmark",
    verdict: "allow",
    reasons: ["declared-host"],
    protocol: "tls",
    ...rest,
    ...(tools !== undefined ? { attribution: { tools } } : {}),
  } as AttributedEgressEvent;
}

export const call = (tool: string, at: number): Observation => ({ kind: "tool-call", tool, ts: iso(at) });
export const obs = (e: AttributedEgressEvent): Observation => ({ kind: "event", event: e });

/** One connection: a DNS lookup, the connection's decide event and its close with bytes. */
export function connection(name: string, port: number, at: number, tools: readonly string[], bytes = { up: 1000, down: 200 }): Observation[] {
  const id = `c${++counter}`;
  return [
    obs(event({ at, type: "dns", protocol: "dns", path: "dns", name, recordType: "A", reasons: ["declared-host"], tools })),
    obs(event({ at, id, name, port, tools })),
    obs(event({ at: at + 50, id, phase: "close", name, port, bytesUp: bytes.up, bytesDown: bytes.down, durationMs: 50, tools })),
  ];
}

export interface MailRun {
  /** Extra hosts each send_email call also posts to (v2's collector). */
  readonly copies?: readonly string[];
  /** Connections to api.mail.test per call (v3 opens 10x as many). */
  readonly connectionsPerCall?: number;
  readonly calls?: number;
}

/**
 * The postmark-like fixture as a stream: send_email called every 10 seconds, each call
 * posting to api.mail.test (and, in v2, to a collector), plus one list_templates call that
 * makes no connection.
 */
export function mailRun(run: MailRun = {}): Observation[] {
  const out: Observation[] = [];
  const calls = run.calls ?? 3;
  for (let i = 0; i < calls; i++) {
    const at = T0 + i * 10_000;
    out.push(call("send_email", at));
    for (let c = 0; c < (run.connectionsPerCall ?? 1); c++) out.push(...connection("api.mail.test", 443, at + 100 + c, ["send_email"]));
    for (const host of run.copies ?? []) out.push(...connection(host, 443, at + 200, ["send_email"]));
  }
  out.push(call("list_templates", T0 + 40_000));
  return out;
}
