import { afterEach, describe, expect, it } from "vitest";
import type { Verdict } from "../../../src/core/decision.js";
import type { EgressEvent } from "../../../src/core/events.js";
import { DnsEventEncoder, dnsEvent, type DnsEventFields } from "../../../src/sidecar/dns/dns-event.js";
import { EventWriter } from "../../../src/sidecar/event-writer.js";
import { PUBLIC_IP, startHarness, udpQuery, waitUntil, type Harness } from "./helpers.js";

const ALLOW: Verdict = { verdict: "allow", reasons: ["declared-host"], rule: "api.example.com" };
const VERDICTS: Verdict[] = [
  ALLOW,
  { verdict: "block", reasons: ["undeclared-host"] },
  { verdict: "would-block", reasons: ["undeclared-host", "tunnelling-entropy"] as Verdict["reasons"] },
  { verdict: "flag", reasons: ["declared-host"], rule: 'odd "rule" \\ here' },
  { verdict: "block", reasons: ["secret-leak"] as Verdict["reasons"], leaks: ["TOKEN sentinel in name"] },
];

function fields(over: Partial<DnsEventFields>): DnsEventFields {
  return {
    ts: "2026-12-03T15:22:22.123Z",
    id: "6f1c2a4e-0b7d-4c57-9a51-0f6a1d2c3b4e",
    server: "fixture",
    verdict: ALLOW,
    client: "10.0.0.5",
    name: "api.example.com",
    asSent: "api.example.com",
    plain: true,
    recordType: "A",
    ip: "10.0.0.2",
    error: undefined,
    ...over,
  };
}

describe("DnsEventEncoder: the JSON line built from fragments", () => {
  it("is JSON.stringify of the event object, byte for byte, for every shape a DNS event takes", () => {
    const encoder = new DnsEventEncoder();
    const cases: DnsEventFields[] = [];
    for (const verdict of VERDICTS) {
      cases.push(
        fields({ verdict }),
        fields({ verdict, asSent: "Api.EXAMPLE.com" }),
        fields({ verdict, name: undefined, asSent: undefined, recordType: undefined, ip: undefined, error: "bad-tcp-length" }),
        fields({ verdict, name: "a\\034b.example", asSent: "A\\034B.example", plain: false, ip: undefined, error: 'upstream: "quoted"\nline' }),
        fields({ verdict, asSent: `${"X".repeat(600)}.example.com`, name: undefined, plain: true }),
        fields({ verdict, server: 'srv "q"', client: "192.168.1.1", id: "weird\u0001id", ts: "2026-12-03T15:22:22.000Z", recordType: "TYPE65280" }),
        fields({ verdict, error: "caf\u00e9 \u2603 \ud83d\ude00", ip: undefined }),
      );
    }
    // Each twice: the second time from the encoder's kept fragments.
    for (const f of [...cases, ...cases]) expect(encoder.line(f)).toBe(JSON.stringify(dnsEvent(f)));
    // A verdict with the same content but another object, and back to the first server and client.
    expect(encoder.line(fields({ verdict: { ...ALLOW } }))).toBe(JSON.stringify(dnsEvent(fields({}))));
  });

  it("formats timestamps as Date#toISOString does, across seconds, years and fractions", () => {
    const encoder = new DnsEventEncoder();
    const base = Date.UTC(2026, 11, 3, 15, 22, 22);
    const times = [base, base + 1, base + 9, base + 10, base + 99, base + 100, base + 999, base + 1000, base + 1001, base + 0.7, base + 5.999, 0, 999, -1, -1001, -0.5, 253402300799999, 253402300800000, base];
    for (const t of times) expect(encoder.timestamp(t)).toBe(new Date(t).toISOString());
  });
});

describe("DnsServer events through the event writer", () => {
  const harnesses: Harness[] = [];
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.close()));
  });

  it("writes, for each query, the very line JSON.stringify gives of the event a sink of objects receives", async () => {
    const lines: string[] = [];
    const writer = new EventWriter({ out: { write: (chunk: string) => lines.push(...chunk.split("\n").filter((l) => l.length > 0)) } });
    const policy = { allow: [{ host: "api.example.com" }, { host: "*.svc.example.com" }] };
    const encoded = await startHarness({ policy, events: writer });
    const objects = await startHarness({ policy });
    harnesses.push(encoded, objects);
    const queries: [string, string][] = [
      ["api.example.com", "A"],
      ["api.example.com", "A"],
      ["Api.Example.COM", "A"],
      ["api.example.com", "AAAA"],
      ["undeclared.example.org", "A"],
      ["undeclared.example.org", "A"],
      ["x1.svc.example.com", "A"],
      ["127.0.0.1", "A"],
      ['we"ird.example.com', "A"],
      ["api.example.com", "MX"],
    ];
    for (const h of [encoded, objects]) {
      h.upstream.setA("api.example.com", [PUBLIC_IP], 60);
      for (const [name, type] of queries) await udpQuery(h.port, name, type);
    }
    writer.flush();
    await waitUntil(() => objects.ctx.sink.egress().length >= queries.length, 2000, "object events");
    expect(lines).toHaveLength(queries.length);
    // The encoded path was taken: the object sink of that harness saw nothing.
    expect(encoded.ctx.sink.events).toEqual([]);
    objects.ctx.sink.egress().forEach((event, i) => {
      const line = lines[i]!;
      const { ts, id } = JSON.parse(line) as EgressEvent;
      expect(line).toBe(JSON.stringify({ ...event, ts, id }));
    });
    expect(lines.map((l) => (JSON.parse(l) as EgressEvent).name)).toContain("api.example.com");
  });
});
