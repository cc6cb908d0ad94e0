import { describe, expect, it } from "vitest";
import { BaselineRecorder, recordBaseline, type Baseline } from "../../src/core/baseline/index.js";
import { percentileWithIdle, RateCounter } from "../../src/core/baseline/rate-stats.js";
import { call, connection, event, iso, mailRun, obs, T0 } from "./support/observations.js";

const record = (observations: Parameters<typeof recordBaseline>[1], rateTolerance = 2): Baseline => recordBaseline({ server: "postmark", rateTolerance }, observations);

describe("BaselineRecorder", () => {
  it("folds the v1 mail run into a learning baseline", () => {
    const b = record(mailRun());
    expect(b).toEqual({
      version: 1,
      server: "postmark",
      status: "learning",
      rateTolerance: 2,
      observed: { from: iso(T0), to: iso(T0 + 40_000), minutes: 1, events: 9, toolCalls: 4 },
      destinations: [
        {
          name: "api.mail.test",
          port: 443,
          protocols: ["tls"],
          count: 3,
          firstSeen: iso(T0 + 100),
          lastSeen: iso(T0 + 20_150),
          bytesUp: 3000,
          bytesDown: 600,
          perMinute: { max: 3, p95: 3 },
          tools: ["send_email"],
        },
      ],
      dns: [{ name: "api.mail.test", type: "A", count: 3, firstSeen: iso(T0 + 100), lastSeen: iso(T0 + 20_100), tools: ["send_email"] }],
      tools: [
        { name: "list_templates", calls: 1, firstSeen: iso(T0 + 40_000), lastSeen: iso(T0 + 40_000), perMinute: { mean: 1, p95: 1, max: 1 }, destinations: [], sharedDestinations: [] },
        { name: "send_email", calls: 3, firstSeen: iso(T0), lastSeen: iso(T0 + 20_100), perMinute: { mean: 3, p95: 3, max: 3 }, destinations: ["api.mail.test:443"], sharedDestinations: [] },
      ],
      tunnelling: [],
    });
  });

  it("counts the most connections in any 60 seconds, so a burst across a minute boundary is not halved", () => {
    const at = [50_000, 52_000, 54_000, 56_000, 58_000, 61_000, 62_000, 63_000, 64_000, 65_000].map((ms) => T0 + ms);
    const b = record(at.flatMap((ms) => connection("api.mail.test", 443, ms, [])));
    expect(b.destinations[0]?.perMinute).toEqual({ max: 10, p95: 5 });
    expect(b.observed.minutes).toBe(2);
  });

  it("takes mean and p95 over the whole window, idle minutes included", () => {
    // 1 call in minute 0, 20 calls in minute 5, nothing in between: 6 minutes, 21 calls.
    const observations = [call("send_email", T0), ...Array.from({ length: 20 }, (_, i) => call("send_email", T0 + 5 * 60_000 + i * 1000))];
    const tool = record(observations).tools[0];
    expect(tool?.perMinute).toEqual({ mean: 3.5, p95: 20, max: 20 });
    expect(record(observations).observed.minutes).toBe(6);
  });

  it("credits a connection to every tool in flight (as shared when several are), and to none outside a call", () => {
    const b = record([
      call("send_email", T0),
      call("read_inbox", T0 + 10),
      ...connection("api.mail.test", 443, T0 + 20, ["send_email", "read_inbox"]),
      ...connection("telemetry.mail.test", 443, T0 + 30, []),
    ]);
    expect(b.destinations.map((d) => [d.name, d.tools])).toEqual([
      ["api.mail.test", ["read_inbox", "send_email"]],
      ["telemetry.mail.test", []],
    ]);
    expect(b.tools.map((t) => [t.name, t.destinations, t.sharedDestinations])).toEqual([
      ["read_inbox", [], ["api.mail.test:443"]],
      ["send_email", [], ["api.mail.test:443"]],
    ]);
    // Once a tool reaches a destination alone, it is its own, not shared.
    const later = record([call("send_email", T0), ...connection("api.mail.test", 443, T0 + 20, ["send_email", "read_inbox"]), ...connection("api.mail.test", 443, T0 + 40, ["send_email"])]);
    expect(later.tools.map((t) => [t.name, t.destinations, t.sharedDestinations])).toEqual([
      ["read_inbox", [], ["api.mail.test:443"]],
      ["send_email", ["api.mail.test:443"], []],
    ]);
  });

  it("lists a tool seen only through attribution, with no calls (closes carry bytes, not activity)", () => {
    const b = record(connection("api.mail.test", 443, T0, ["send_email"]));
    expect(b.tools).toEqual([{ name: "send_email", calls: 0, firstSeen: iso(T0), lastSeen: iso(T0), perMinute: { mean: 0, p95: 0, max: 0 }, destinations: ["api.mail.test:443"], sharedDestinations: [] }]);
  });

  it("records every attempt whatever its verdict (a quarantine blocks all of them), with names normalised", () => {
    const b = record([
      obs(event({ at: T0, name: "API.Mail.Test.", port: 443, verdict: "block", reasons: ["capture"], protocol: "http" })),
      obs(event({ at: T0 + 1, name: "api.mail.test", port: 443, verdict: "would-block", reasons: ["undeclared-host"], protocol: "connect" })),
      obs(event({ at: T0 + 2, ip: "10.1.2.3", port: 5432, protocol: "connect", reasons: ["declared-cidr"] })),
    ]);
    expect(b.destinations.map((d) => [d.name, d.port, d.protocols, d.count])).toEqual([
      ["10.1.2.3", 5432, ["connect"], 1],
      ["api.mail.test", 443, ["connect", "http"], 2],
    ]);
  });

  it("keeps DNS record types apart and upper-cases them", () => {
    const dns = (name: string, recordType: string, at: number) => obs(event({ at, type: "dns", protocol: "dns", path: "dns", name, recordType }));
    const b = record([dns("api.mail.test", "a", T0), dns("api.mail.test", "TXT", T0 + 1), dns("api.mail.test", "A", T0 + 2)]);
    expect(b.dns.map((e) => [e.name, e.type, e.count])).toEqual([
      ["api.mail.test", "A", 2],
      ["api.mail.test", "TXT", 1],
    ]);
  });

  it("summarises tunnelling-like names per rule instead of listing each name", () => {
    const names = ["aGVsbG8gd29ybGQgdGhpcyBpcyBleGZpbHRyYXRlZCBkYXRh.x.mail.test", "c2VjcmV0IHRva2VuIGdvZXMgaGVyZSBhbmQgaGVyZSBhbmQ.x.mail.test"];
    const b = record(
      names.map((name, i) =>
        obs(event({ at: T0 + i, type: "dns", protocol: "dns", path: "dns", name, recordType: "A", verdict: "would-block", reasons: ["tunnel-long-label", "tunnel-entropy"], rule: "*.mail.test", tools: ["send_email"] })),
      ),
    );
    expect(b.dns).toEqual([]);
    expect(b.tunnelling).toEqual([
      { rule: "*.mail.test", signals: ["tunnel-entropy", "tunnel-long-label"], count: 2, names: 2, examples: names.map((n) => n.toLowerCase()).sort(), firstSeen: iso(T0), lastSeen: iso(T0 + 1), tools: ["send_email"] },
    ]);
  });

  it("ignores what it cannot read, and counts it", () => {
    const recorder = new BaselineRecorder({ server: "postmark" });
    expect(recorder.observe(obs(event({ at: T0, server: "other", name: "a.test", port: 443 })))).toBe(false);
    expect(recorder.recordEvent({ ...event({ at: T0, name: "a.test", port: 443 }), ts: "yesterday" })).toBe(false);
    expect(recorder.observe(obs(event({ at: T0, name: "not a host!", port: 443 })))).toBe(false);
    expect(recorder.observe(obs(event({ at: T0, name: "a.test" })))).toBe(false);
    expect(recorder.recordToolCall("", T0)).toBe(false);
    expect(recorder.ignored).toBe(5);
    expect(recorder.snapshot().observed).toEqual({ minutes: 0, events: 0, toolCalls: 0 });
    expect(recorder.snapshot().rateTolerance).toBe(3);
  });

  it("bounds the number of distinct entries it keeps", () => {
    const recorder = new BaselineRecorder({ server: "postmark", maxEntries: 2 });
    for (const name of ["a.test", "b.test", "c.test"]) recorder.observe(obs(event({ at: T0, name, port: 443 })));
    expect(recorder.snapshot().destinations.map((d) => d.name)).toEqual(["a.test", "b.test"]);
    expect(recorder.ignored).toBe(1);
  });

  it("accepts epoch milliseconds for tool calls", () => {
    const recorder = new BaselineRecorder({ server: "postmark" });
    recorder.recordToolCall("send_email", T0);
    expect(recorder.snapshot().tools[0]?.firstSeen).toBe(iso(T0));
  });
});

describe("rate statistics", () => {
  it("computes nearest-rank percentiles without materialising idle minutes", () => {
    expect(percentileWithIdle([], 0, 0.95)).toBe(0);
    expect(percentileWithIdle([7], 1, 0.95)).toBe(7);
    expect(percentileWithIdle([5, 1], 100, 0.95)).toBe(0);
    expect(percentileWithIdle([5, 1, 9, 2, 3], 5, 0.95)).toBe(9);
    expect(percentileWithIdle(Array.from({ length: 20 }, (_, i) => i + 1), 20, 0.95)).toBe(19);
  });

  it("slides its one-minute window in 5-second slices, like the sidecar", () => {
    const rate = new RateCounter();
    for (const ms of [0, 30_000, 59_999, 60_000, 64_999, 65_000]) rate.hit(T0 + ms);
    // The minute [0, 60s) holds 3; slices 2..13 ([10s, 70s)) hold 30s, 59.999s, 60s, 64.999s and 65s.
    expect(rate.maxPerMinute()).toBe(5);
    expect(rate.minuteCounts().sort()).toEqual([3, 3]);
  });
});

describe("BaselineRecorder and close events", () => {
  it("adds bytes to the attempt counted at decide; a close whose decide it never saw counts no attempt", () => {
    const closeOnly = event({ at: T0, phase: "close", name: "late.mail.test", port: 443, bytesUp: 10, bytesDown: 20, tools: ["send_email"] });
    const b = recordBaseline({ server: "postmark" }, [...connection("api.mail.test", 443, T0, []), obs(closeOnly)]);
    expect(b.destinations.map((d) => [d.name, d.count, d.bytesUp, d.bytesDown, d.perMinute.max, d.tools])).toEqual([
      ["api.mail.test", 1, 1000, 200, 1, []],
      ["late.mail.test", 0, 10, 20, 0, []],
    ]);
  });

  it("does not turn a tunnelling connection's close into a destination", () => {
    const id = "t1";
    const name = "mzxw6ytboi4dqnzsgm2tmnzygu3tqobzgezdgnbvgy3tqojq.x.mail.test";
    const b = recordBaseline({ server: "postmark" }, [
      obs(event({ at: T0, id, name, port: 443, verdict: "flag", reasons: ["tunnel-entropy"], rule: "*.mail.test" })),
      obs(event({ at: T0 + 5, id, phase: "close", name, port: 443, verdict: "flag", reasons: ["tunnel-entropy"], rule: "*.mail.test", bytesUp: 5, bytesDown: 5 })),
    ]);
    expect(b.destinations).toEqual([]);
    expect(b.tunnelling.map((t) => [t.rule, t.count])).toEqual([["*.mail.test", 1]]);
  });
});
