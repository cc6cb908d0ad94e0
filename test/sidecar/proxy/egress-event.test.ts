import { describe, expect, it } from "vitest";
import type { Verdict } from "../../../src/core/decision.js";
import type { SidecarEvent } from "../../../src/core/events.js";
import { EventWriter } from "../../../src/sidecar/event-writer.js";
import { EgressEventEncoder, egressEvent, emitEgress, type AttemptFacts } from "../../../src/sidecar/proxy/egress-event.js";
import type { SidecarContext } from "../../../src/sidecar/sidecar-context.js";

const VERDICTS: Verdict[] = [
  { verdict: "allow", reasons: ["declared-host"], rule: "api.example.com" },
  { verdict: "block", reasons: ["undeclared-host"] },
  { verdict: "block", reasons: [] },
  { verdict: "would-block", reasons: ["undeclared-host", "drift-new-request-field"] },
  { verdict: "flag", reasons: ["declared-host"], rule: 'odd "rule" \\ here\u2028' },
  { verdict: "block", reasons: ["secret-leak", "credential-pattern"], leaks: ["TOKEN sentinel in body"], credentials: ["aws-access-key"] },
];

const BASE: AttemptFacts = { id: "6f1c2a4e-0b7d-4c57-9a51-0f6a1d2c3b4e", path: "explicit", protocol: "http" };

// Every optional fact, alone and together, with values that need escaping or clipping.
const FACTS: AttemptFacts[] = [
  BASE,
  { ...BASE, path: "transparent", protocol: "tls", name: "api.example.com", port: 443, ip: "10.0.0.2", sni: "api.example.com", client: "10.0.0.5:40000" },
  { ...BASE, name: "x".repeat(600), host: 'h"o\\st\n', connect: "api.example.com:443", method: "M".repeat(40), url: `/${"u".repeat(3000)}` },
  { ...BASE, name: "\u00e9xample.com", url: "/send?token&to", method: "POST", port: 80 },
  { ...BASE, name: `${"a".repeat(511)}\ud83d\ude00`, host: "\ud800 lone" },
  {
    ...BASE,
    method: "POST",
    url: "/email",
    shape: { pathTemplate: "/email", queryKeys: [], headerNames: ["content-type", "host"], bodyKind: "json", bodyFields: ["To", "Bcc"] },
    driftFields: ["body Bcc"],
    injected: ["POSTMARK_TOKEN"],
  },
  { ...BASE, shape: { pathTemplate: "/", queryKeys: ["a"], headerNames: [], bodyKind: "none", bodyFields: [], bodyNotInspected: "too-large" }, driftFields: [] },
  { ...BASE, shape: {} },
];

const CLOSES = [
  undefined,
  {},
  { bytesUp: 10, bytesDown: 2048, durationMs: 1.25 },
  { bytesUp: 0, bytesDown: 0, durationMs: 3, error: new Error('connect ECONNREFUSED "10.0.0.2":80') },
  { error: `udp datagram\u0000 not forwarded ${"e".repeat(700)}` },
  { durationMs: Number.NaN },
];

function context(now: number): SidecarContext {
  return { server: 'fixture "server"', now: () => now } as unknown as SidecarContext;
}

describe("EgressEventEncoder: the JSON line built from fragments", () => {
  it("is JSON.stringify of egressEvent, byte for byte, for every shape an egress event takes", () => {
    const encoder = new EgressEventEncoder();
    let checked = 0;
    for (const verdict of VERDICTS) {
      for (const facts of FACTS) {
        for (const close of CLOSES) {
          // Times across a second boundary, a year boundary and sub-millisecond fractions.
          for (const now of [1_796_000_000_000, 1_796_000_000_999.7, 1_796_000_001_005, Date.UTC(2026, 11, 31, 23, 59, 59, 999)]) {
            const ctx = context(now);
            expect(encoder.line(ctx, facts, verdict, close)).toBe(JSON.stringify(egressEvent(ctx, facts, verdict, close)));
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(VERDICTS.length * FACTS.length * CLOSES.length * 4);
  });

  it("follows a change of server name", () => {
    const encoder = new EgressEventEncoder();
    for (const server of ["one", "two", "one"]) {
      const ctx = { server, now: () => 0 } as unknown as SidecarContext;
      expect(encoder.line(ctx, BASE, VERDICTS[0]!)).toBe(JSON.stringify(egressEvent(ctx, BASE, VERDICTS[0]!)));
    }
  });
});

describe("emitEgress", () => {
  it("hands the event writer the line, and any other sink the object", () => {
    const written: string[] = [];
    const writer = new EventWriter({ out: { write: (s: string) => written.push(s) }, schedule: () => undefined });
    const objects: SidecarEvent[] = [];
    const plain = { emit: (e: SidecarEvent) => objects.push(e) };
    const facts = FACTS[5]!;
    for (const events of [writer, plain]) {
      const ctx = { server: "s", now: () => 1_796_000_000_000, events } as unknown as SidecarContext;
      emitEgress(ctx, facts, VERDICTS[0]!);
      emitEgress(ctx, facts, VERDICTS[0]!, CLOSES[2]);
    }
    writer.flush();
    const ctx = { server: "s", now: () => 1_796_000_000_000 } as unknown as SidecarContext;
    const expected = [egressEvent(ctx, facts, VERDICTS[0]!), egressEvent(ctx, facts, VERDICTS[0]!, CLOSES[2])];
    expect(written.join("")).toBe(expected.map((e) => `${JSON.stringify(e)}\n`).join(""));
    expect(objects).toEqual(expected);
  });
});
