import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_TUNNELLING_LIMITS } from "../../../src/core/tunnelling.js";
import { testPolicy } from "../../support/sidecar-context.js";
import { SVCB_KEYS, encodeSvcb, rewriteSvcb } from "../../../src/sidecar/dns/svcb-params.js";
import { PUBLIC_IP, SIDECAR_ADDRESS, aData, rcode, startHarness, udpQuery, type Harness, type HarnessOptions } from "./helpers.js";

const POLICY: HarnessOptions["policy"] = {
  allow: [{ host: "api.example.com" }, { host: "*.svc.example.com" }],
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  h = await startHarness({ policy: POLICY, ...options });
  h.upstream.setA("api.example.com", [PUBLIC_IP]);
  return h;
}

describe("DnsServer: which names are answered", () => {
  it("answers a declared exact name with the sidecar's address, after resolving it upstream itself", async () => {
    const { port, upstream, ctx, ledger } = await harness();
    const reply = await udpQuery(port, "api.example.com");
    expect(rcode(reply)).toBe("NOERROR");
    expect(aData(reply)).toEqual([SIDECAR_ADDRESS]);
    expect(upstream.queriesFor("api.example.com").map((q) => q.type)).toEqual(["A"]);
    expect(ledger.lookupCached("api.example.com")?.ips).toEqual([PUBLIC_IP]);
    const event = await ctx.sink.waitFor((e) => e.name === "api.example.com");
    expect(event).toMatchObject({
      type: "dns",
      phase: "decide",
      path: "dns",
      protocol: "dns",
      server: "fixture",
      verdict: "allow",
      reasons: ["declared-host"],
      rule: "api.example.com",
      recordType: "A",
      client: "127.0.0.1",
      ip: SIDECAR_ADDRESS,
    });
    expect(typeof event.id).toBe("string");
    expect(Number.isNaN(Date.parse(event.ts))).toBe(false);
  });

  it("matches a wildcard for subdomains but never for the apex", async () => {
    const { port, upstream } = await harness();
    upstream.setA("a.svc.example.com", [PUBLIC_IP]).setA("svc.example.com", [PUBLIC_IP]);
    expect(aData(await udpQuery(port, "a.svc.example.com"))).toEqual([SIDECAR_ADDRESS]);
    const apex = await udpQuery(port, "svc.example.com");
    expect(rcode(apex)).toBe("NXDOMAIN");
    expect(upstream.queriesFor("svc.example.com").map((q) => q.name)).toEqual(["a.svc.example.com"]);
  });

  it("asks upstream once for concurrent queries of one name, then answers from the ledger", async () => {
    const { port, upstream } = await harness();
    upstream.set("api.example.com", "A", { answers: [{ type: "A", name: "api.example.com", ttl: 60, data: PUBLIC_IP }], delayMs: 50 });
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => udpQuery(port, "api.example.com", "A", { id: i })));
    expect(replies.map((r) => aData(r)[0])).toEqual(Array(10).fill(SIDECAR_ADDRESS));
    await udpQuery(port, "api.example.com");
    expect(upstream.queries).toHaveLength(1);
  });

  it("normalises case and a trailing dot, and echoes the question as asked", async () => {
    const { port, upstream } = await harness();
    const reply = await udpQuery(port, "API.Example.COM.");
    expect(aData(reply)).toEqual([SIDECAR_ADDRESS]);
    expect(reply.questions?.[0]?.name).toBe("API.Example.COM");
    expect(upstream.queries.map((q) => q.name)).toEqual(["api.example.com"]);
  });

  it("keeps the name as sent beside the normalised one in the event: case carries data too", async () => {
    const { port, ctx } = await harness();
    await udpQuery(port, "aGVsbG8gV29ybGQ.evil.example.net");
    const event = await ctx.sink.waitFor((e) => e.name === "aGVsbG8gV29ybGQ.evil.example.net".toLowerCase());
    expect(event.nameAsSent).toBe("aGVsbG8gV29ybGQ.evil.example.net");
    await udpQuery(port, "plain.example.net");
    expect((await ctx.sink.waitFor((e) => e.name === "plain.example.net")).nameAsSent).toBeUndefined();
  });

  it("answers an undeclared name NXDOMAIN, emits an event, and never asks upstream", async () => {
    const { port, upstream, ctx } = await harness();
    upstream.setA("evil.example.net", [PUBLIC_IP]);
    const reply = await udpQuery(port, "evil.example.net");
    expect(rcode(reply)).toBe("NXDOMAIN");
    expect(reply.answers).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.name === "evil.example.net");
    expect(event).toMatchObject({ verdict: "block", reasons: ["undeclared-host"], recordType: "A" });
    expect(event.ip).toBeUndefined();
    expect(upstream.queries).toEqual([]);
  });

  it("never answers AAAA: NODATA for a declared name, NXDOMAIN otherwise, upstream never asked", async () => {
    const { port, upstream, ctx } = await harness();
    const declared = await udpQuery(port, "api.example.com", "AAAA");
    expect(rcode(declared)).toBe("NOERROR");
    expect(declared.answers).toEqual([]);
    const undeclared = await udpQuery(port, "other.example.net", "AAAA");
    expect(rcode(undeclared)).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
    const events = ctx.sink.egress().filter((e) => e.recordType === "AAAA");
    expect(events).toHaveLength(2);
    for (const e of events) {
      expect(e.verdict).toBe("block");
      expect(e.reasons).toContain("ipv6-disabled");
    }
  });

  it("refuses other record types (MX, ANY, PTR, NS) without asking upstream", async () => {
    const { port, upstream, ctx } = await harness();
    for (const type of ["MX", "ANY", "PTR", "NS"]) {
      const reply = await udpQuery(port, "api.example.com", type);
      expect(reply.answers).toEqual([]);
      expect(["NOERROR", "NXDOMAIN", "REFUSED"]).toContain(rcode(reply));
    }
    expect(rcode(await udpQuery(port, "x.example.net", "MX"))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
    const events = ctx.sink.egress();
    expect(events).toHaveLength(5);
    for (const e of events) expect(e.verdict).toBe("block");
  });
});

describe("DnsServer: TXT, HTTPS and SVCB", () => {
  it("does not answer or forward a TXT query under a declared wildcard when TXT is undeclared (exfiltration)", async () => {
    const { port, upstream, ctx } = await harness();
    upstream.setDefault({ answers: [{ type: "TXT", name: "x", ttl: 60, data: ["secret"] }] });
    const reply = await udpQuery(port, "c2VjcmV0.svc.example.com", "TXT");
    expect(reply.answers).toEqual([]);
    expect(upstream.queries).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.recordType === "TXT");
    expect(event.verdict).toBe("block");
    expect(event.reasons).toContain("undeclared-record-type");
  });

  it("answers TXT from upstream when the policy declares it", async () => {
    const { port, upstream } = await harness({ policy: { ...POLICY, dns: { recordTypes: ["A", "TXT"] } } });
    upstream.set("api.example.com", "TXT", { answers: [{ type: "TXT", name: "api.example.com", ttl: 60, data: ["v=spf1 -all"] }] });
    const reply = await udpQuery(port, "api.example.com", "TXT");
    expect(rcode(reply)).toBe("NOERROR");
    const txt = reply.answers?.[0];
    expect(txt?.type).toBe("TXT");
    expect((txt as { data: Buffer[] }).data.map(String)).toEqual(["v=spf1 -all"]);
    expect(upstream.queriesFor("api.example.com").map((q) => q.type)).toEqual(["TXT"]);
  });

  it("answers HTTPS only when declared, without ech or ipv6hint, with ipv4hint pointing at the sidecar", async () => {
    const rdata = encodeSvcb(1, ".", [
      [SVCB_KEYS.mandatory, Buffer.from([0, SVCB_KEYS.alpn, 0, SVCB_KEYS.ech])],
      [SVCB_KEYS.alpn, Buffer.from([2, 0x68, 0x32])],
      [SVCB_KEYS.ipv4hint, Buffer.from([23, 45, 67, 89])],
      [SVCB_KEYS.ech, Buffer.from("ech-config")],
      [SVCB_KEYS.ipv6hint, Buffer.alloc(16, 1)],
    ]);
    const https = { answers: [{ type: "UNKNOWN_65", name: "api.example.com", ttl: 60, data: rdata } as never] };

    const undeclared = await harness();
    undeclared.upstream.set("api.example.com", "HTTPS", https);
    const refused = await udpQuery(undeclared.port, "api.example.com", "UNKNOWN_65");
    expect(refused.answers).toEqual([]);
    expect(undeclared.upstream.queries).toEqual([]);
    await undeclared.close();

    const { port, upstream } = await harness({ policy: { ...POLICY, dns: { recordTypes: ["A", "HTTPS"] } } });
    upstream.set("api.example.com", "HTTPS", https);
    const reply = await udpQuery(port, "api.example.com", "UNKNOWN_65");
    expect(rcode(reply)).toBe("NOERROR");
    const got = (reply.answers?.[0] as { data: Buffer }).data;
    const params = paramsOf(got);
    expect([...params.keys()]).toEqual([SVCB_KEYS.mandatory, SVCB_KEYS.alpn, SVCB_KEYS.ipv4hint]);
    expect([...params.get(SVCB_KEYS.ipv4hint)!]).toEqual(SIDECAR_ADDRESS.split(".").map(Number));
    expect([...params.get(SVCB_KEYS.mandatory)!]).toEqual([0, SVCB_KEYS.alpn]);
  });
});

function paramsOf(rdata: Buffer): Map<number, Buffer> {
  // Re-parse with the same code path in upstream mode (no rewrite) to list what is left.
  const parsed = rewriteSvcb(rdata);
  expect(parsed).toBeDefined();
  let offset = 2;
  while (rdata[offset] !== 0) offset += 1 + rdata[offset]!;
  offset += 1;
  const out = new Map<number, Buffer>();
  while (offset < rdata.length) {
    const key = rdata.readUInt16BE(offset);
    const len = rdata.readUInt16BE(offset + 2);
    out.set(key, rdata.subarray(offset + 4, offset + 4 + len));
    offset += 4 + len;
  }
  return out;
}

describe("DnsServer: rebinding", () => {
  for (const [ip, reason] of [
    ["127.0.0.1", "resolution-loopback"],
    ["10.1.2.3", "resolution-private"],
    ["169.254.169.254", "resolution-metadata"],
  ] as const) {
    it(`refuses a declared name that resolves to ${ip}`, async () => {
      const { port, upstream, ctx } = await harness();
      upstream.setA("api.example.com", [ip]);
      const reply = await udpQuery(port, "api.example.com");
      expect(rcode(reply)).toBe("NXDOMAIN");
      const event = await ctx.sink.waitFor((e) => e.name === "api.example.com");
      expect(event.verdict).toBe("block");
      expect(event.reasons).toContain(reason);
    });

    it(`refuses ${ip} in OBSERVING mode too (a hard invariant)`, async () => {
      const { port, upstream } = await harness({ mode: "observing" });
      upstream.setA("api.example.com", [ip]);
      expect(rcode(await udpQuery(port, "api.example.com"))).toBe("NXDOMAIN");
    });
  }

  it("refuses a private address in upstream answer mode too, and hands out nothing", async () => {
    const { port, upstream } = await harness({ answer: { kind: "upstream" } });
    upstream.setA("api.example.com", [PUBLIC_IP, "10.1.2.3"]);
    const reply = await udpQuery(port, "api.example.com");
    expect(rcode(reply)).toBe("NXDOMAIN");
    expect(reply.answers).toEqual([]);
  });

  it("allows a private answer inside a trustedRanges entry", async () => {
    const { port, upstream, ctx } = await harness({ trusted: ["10.0.0.0/8"], answer: { kind: "upstream" } });
    upstream.setA("api.example.com", ["10.1.2.3"]);
    const reply = await udpQuery(port, "api.example.com");
    expect(aData(reply)).toEqual(["10.1.2.3"]);
    expect((await ctx.sink.waitFor((e) => e.name === "api.example.com")).verdict).toBe("allow");
  });

  it("allows a private answer covered by a CIDR rule", async () => {
    const { port, upstream } = await harness({ policy: { allow: [{ host: "db.internal.example" }, { cidr: "10.1.0.0/16", ports: [5432] }] } });
    upstream.setA("db.internal.example", ["10.1.2.3"]);
    expect(aData(await udpQuery(port, "db.internal.example"))).toEqual([SIDECAR_ADDRESS]);
  });
});

describe("DnsServer: tunnelling", () => {
  const exfil = "a8f3k2j9x7q1m5n4b6v0c8z2l4p7r9t1y3w5e";

  it("blocks a long high-entropy label under a declared wildcard in ENFORCING, upstream never asked", async () => {
    const { port, upstream, ctx } = await harness();
    const name = `${exfil}.svc.example.com`;
    upstream.setA(name, [PUBLIC_IP]);
    expect(rcode(await udpQuery(port, name))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.name === name);
    expect(event.verdict).toBe("block");
    expect(event.reasons).toContain("tunnel-entropy");
  });

  it("blocks once distinct subdomains per minute under a wildcard pass the limit", async () => {
    const { port, upstream, ctx } = await harness();
    ctx.setDecision({ ...ctx.decisionContext(), tunnelling: { ...DEFAULT_TUNNELLING_LIMITS, maxUniqueSubdomainsPerMinute: 3 } });
    upstream.setDefault((q) => ({ answers: [{ type: "A", name: q.name, ttl: 60, data: PUBLIC_IP }] }));
    const codes: string[] = [];
    for (const label of ["one", "two", "three", "four", "five"]) codes.push(rcode(await udpQuery(port, `${label}.svc.example.com`)));
    expect(codes).toEqual(["NOERROR", "NOERROR", "NOERROR", "NXDOMAIN", "NXDOMAIN"]);
    // A name already seen does not count again, but the suffix stays over the limit for the window.
    expect(rcode(await udpQuery(port, "one.svc.example.com"))).toBe("NXDOMAIN");
    const last = ctx.sink.egress().at(-1);
    expect(last?.reasons).toContain("tunnel-unique-rate");
    expect(upstream.queries.map((q) => q.name)).toEqual(["one.svc.example.com", "two.svc.example.com", "three.svc.example.com"]);
  });

  it("forgets subdomains after the window (injected clock)", async () => {
    let now = 1_000_000;
    const { port, upstream, ctx } = await harness({ now: () => now });
    ctx.setDecision({ ...ctx.decisionContext(), tunnelling: { ...DEFAULT_TUNNELLING_LIMITS, maxUniqueSubdomainsPerMinute: 2 } });
    upstream.setDefault((q) => ({ answers: [{ type: "A", name: q.name, ttl: 60, data: PUBLIC_IP }] }));
    for (const label of ["one", "two"]) expect(rcode(await udpQuery(port, `${label}.svc.example.com`))).toBe("NOERROR");
    expect(rcode(await udpQuery(port, "three.svc.example.com"))).toBe("NXDOMAIN");
    now += 61_000;
    expect(rcode(await udpQuery(port, "three.svc.example.com"))).toBe("NOERROR");
  });
});

// OBSERVING: see dns-server-observing.test.ts.
describe("DnsServer: modes and failures", () => {
  it("capture answers every A query with the sidecar address without asking upstream", async () => {
    const { port, upstream, ctx } = await harness({ policy: { capture: true } });
    expect(aData(await udpQuery(port, "anything.example.org"))).toEqual([SIDECAR_ADDRESS]);
    expect(rcode(await udpQuery(port, "anything.example.org", "AAAA"))).toBe("NOERROR");
    expect(upstream.queries).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.recordType === "A");
    expect(event.verdict).toBe("block");
    expect(event.reasons[0]).toBe("capture");
  });

  it("upstream answer mode hands out the real addresses", async () => {
    const { port, upstream } = await harness({ answer: { kind: "upstream" } });
    upstream.setA("api.example.com", [PUBLIC_IP, "23.45.67.90"]);
    expect(aData(await udpQuery(port, "api.example.com")).sort()).toEqual([PUBLIC_IP, "23.45.67.90"]);
  });

  it("caps the TTL given to clients", async () => {
    const { port } = await harness();
    const reply = await udpQuery(port, "api.example.com");
    expect(reply.answers?.[0]).toMatchObject({ ttl: 30 });
  });

  it("answers SERVFAIL with an event when upstream fails", async () => {
    const { port, upstream, ctx } = await harness();
    upstream.set("api.example.com", "A", { rcode: "SERVFAIL" });
    expect(rcode(await udpQuery(port, "api.example.com"))).toBe("SERVFAIL");
    const event = await ctx.sink.waitFor((e) => e.name === "api.example.com");
    expect(event.error).toMatch(/upstream/);
  });

  it("passes on upstream NXDOMAIN for a declared name", async () => {
    const { port, upstream } = await harness();
    upstream.set("api.example.com", "A", { rcode: "NXDOMAIN" });
    expect(rcode(await udpQuery(port, "api.example.com"))).toBe("NXDOMAIN");
  });

  it("applies a policy reload to the next query", async () => {
    const { port, upstream, ctx } = await harness();
    upstream.setA("new.example.org", [PUBLIC_IP]);
    expect(rcode(await udpQuery(port, "new.example.org"))).toBe("NXDOMAIN");
    ctx.setDecision({ ...ctx.decisionContext(), policy: testPolicy({ name: "fixture", egress: { allow: [{ host: "new.example.org" }] } }) });
    expect(aData(await udpQuery(port, "new.example.org"))).toEqual([SIDECAR_ADDRESS]);
    expect(upstream.queries.map((q) => q.name)).toEqual(["new.example.org"]);
  });
});
