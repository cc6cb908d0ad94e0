import dnsPacket from "dns-packet";
import { afterEach, describe, expect, it } from "vitest";
import { testPolicy } from "../../support/sidecar-context.js";
import { DnsAnswerCache } from "../../../src/sidecar/dns/answer-cache.js";
import { QTYPE, RCODE, buildResponse, ipv4Rdata, parseQuery, type DnsQuery } from "../../../src/sidecar/dns/dns-message.js";
import { PUBLIC_IP, SIDECAR_ADDRESS, aData, encodeQuery, rcode, startHarness, udpExchange, udpQuery, type Harness, type HarnessOptions } from "./helpers.js";

const POLICY: HarnessOptions["policy"] = { allow: [{ host: "api.example.com" }, { host: "*.svc.example.com" }] };

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  const h = await startHarness({ policy: POLICY, ...options });
  harnesses.push(h);
  h.upstream.setA("api.example.com", [PUBLIC_IP], 60);
  return h;
}

function query(name: string, options: { id?: number; edns?: number; rd?: boolean } = {}): { bytes: Buffer; parsed: DnsQuery } {
  const bytes = dnsPacket.encode({
    type: "query",
    id: options.id ?? 1,
    flags: options.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: "A", class: "IN" }],
    ...(options.edns === undefined ? {} : { additionals: [{ type: "OPT", name: ".", udpPayloadSize: options.edns } as dnsPacket.Answer] }),
  });
  const parsed = parseQuery(bytes, 4096);
  if (!parsed.ok) throw new Error(`test query for ${name} does not parse: ${parsed.rejection.reason}`);
  return { bytes, parsed: parsed.query };
}

function ttls(reply: Buffer): number[] {
  return (dnsPacket.decode(reply).answers ?? []).map((a) => ("ttl" in a ? (a.ttl ?? -1) : -1));
}

describe("DnsAnswerCache: a cached response patched for the next query", () => {
  const source = { rcode: RCODE.NOERROR, ips: [PUBLIC_IP], expiresAt: 5_000 } as const;
  const answers = (ttl: number) => [{ type: QTYPE.A, ttl, rdata: ipv4Rdata(PUBLIC_IP) }];
  const build = (q: DnsQuery, ttl: number) => buildResponse(q, { rcode: RCODE.NOERROR, answers: answers(ttl), maxBytes: 512, ednsUdpSize: 1232 });

  it("is byte for byte what buildResponse gives for another ID, RD flag, 0x20 casing and TTL", () => {
    for (const edns of [undefined, 1232]) {
      const cache = new DnsAnswerCache(16);
      const first = query("api.example.com", { id: 7, ...(edns === undefined ? {} : { edns }) });
      cache.storeResponse("api.example.com", first.parsed, source, build(first.parsed, 30));
      const next = query("aPi.ExAMple.CoM", { id: 0xbeef, rd: false, ...(edns === undefined ? {} : { edns }) });
      const cached = cache.response("api.example.com", next.parsed, source, 12);
      expect(cached).toEqual(build(next.parsed, 12));
      // The question goes back as the client wrote it.
      expect(dnsPacket.decode(cached!).questions?.[0]?.name).toBe("aPi.ExAMple.CoM");
    }
  });

  it("misses for another answer source, another EDNS shape, and never keeps a truncated response", () => {
    const cache = new DnsAnswerCache(16);
    const first = query("api.example.com");
    cache.storeResponse("api.example.com", first.parsed, source, build(first.parsed, 30));
    expect(cache.response("api.example.com", first.parsed, { ...source, ips: [PUBLIC_IP] }, 30)).toBeUndefined();
    expect(cache.response("api.example.com", first.parsed, { ...source, expiresAt: 6_000 }, 30)).toBeUndefined();
    expect(cache.response("api.example.com", query("api.example.com", { edns: 1232 }).parsed, source, 30)).toBeUndefined();
    const many = Array.from({ length: 40 }, () => answers(30)[0]!);
    const truncated = buildResponse(first.parsed, { rcode: RCODE.NOERROR, answers: many, maxBytes: 512, ednsUdpSize: 1232 });
    expect(truncated[2]! & 0x02).toBe(0x02);
    const other = new DnsAnswerCache(16);
    other.storeResponse("api.example.com", first.parsed, source, truncated);
    expect(other.response("api.example.com", first.parsed, source, 30)).toBeUndefined();
  });

  it("is bounded: beyond its size the oldest entries go", () => {
    const cache = new DnsAnswerCache(2);
    const verdict = { verdict: "block", reasons: ["undeclared-host"] } as const;
    for (const name of ["a.example", "b.example", "c.example"]) cache.storeDecision(name, QTYPE.A, { verdict });
    expect(cache.decision("a.example", QTYPE.A)).toBeUndefined();
    expect(cache.decision("c.example", QTYPE.A)?.verdict).toEqual(verdict);
  });

  it("keeps an entry that is read while fresh ones stream past, and drops the one never read again", () => {
    const cache = new DnsAnswerCache(4);
    const verdict = { verdict: "block", reasons: ["undeclared-host"] } as const;
    for (const name of ["a.example", "b.example", "c.example"]) cache.storeDecision(name, QTYPE.A, { verdict });
    expect(cache.decision("a.example", QTYPE.A)?.verdict).toEqual(verdict);
    for (const name of ["d.example", "e.example"]) cache.storeDecision(name, QTYPE.A, { verdict });
    expect(cache.decision("a.example", QTYPE.A)?.verdict).toEqual(verdict);
    expect(cache.decision("b.example", QTYPE.A)).toBeUndefined();
    expect(cache.decision("e.example", QTYPE.A)?.verdict).toEqual(verdict);
  });

  it("normalises a plain name once, says when it was asked before, and refuses what is not a host name", () => {
    const cache = new DnsAnswerCache(16);
    expect(cache.normalise("api.example.com")).toEqual({ name: "api.example.com", repeated: false });
    expect(cache.normalise("api.example.com")).toEqual({ name: "api.example.com", repeated: true });
    expect(cache.normalise("127.0.0.1")).toEqual({ name: undefined, repeated: false });
    expect(cache.normalise("127.0.0.1")).toEqual({ name: undefined, repeated: true });
  });
});

describe("DnsServer with its answer cache", () => {
  it("sends from the cache what a server without it sends, for the same query at the same time", async () => {
    let now = 1_000_000;
    const warm = await harness({ now: () => now });
    const cold = await harness({ now: () => now });
    // Both ledgers learn the name at the same instant; only `warm` has answered queries for it.
    expect(aData(await udpQuery(warm.port, "api.example.com"))).toEqual([SIDECAR_ADDRESS]);
    await udpQuery(warm.port, "api.example.com", "AAAA");
    await udpQuery(warm.port, "nope.example.net");
    await cold.ledger.resolve("api.example.com");
    now += 4_000;
    for (const [name, type] of [
      ["API.example.COM", "A"],
      ["api.EXAMPLE.com", "AAAA"],
      ["NoPe.example.net", "A"],
    ] as const) {
      for (const edns of [undefined, 1232]) {
        const message = encodeQuery(name, type, { id: 0x1234, ...(edns === undefined ? {} : { edns }) });
        const fromCache = await udpExchange(warm.port, message);
        const built = await udpExchange(cold.port, message);
        expect(fromCache, `${name} ${type} edns=${edns}`).toEqual(built);
        expect(dnsPacket.decode(fromCache!).questions?.[0]?.name).toBe(name);
      }
    }
    expect(ttls((await udpExchange(warm.port, encodeQuery("api.example.com")))!)).toEqual([30]);
    now += 40_000;
    // 60 s upstream TTL, 44 s gone: 16 s left, below the 30 s cap.
    expect(ttls((await udpExchange(warm.port, encodeQuery("api.example.com")))!)).toEqual([16]);
  });

  it("expires with the ledger's TTL: after it the name is asked upstream again and the new answer is sent", async () => {
    let now = 2_000_000;
    const h = await harness({ now: () => now, answer: { kind: "upstream" } });
    expect(aData(await udpQuery(h.port, "api.example.com"))).toEqual([PUBLIC_IP]);
    expect(aData(await udpQuery(h.port, "api.example.com"))).toEqual([PUBLIC_IP]);
    expect(h.upstream.queriesFor("api.example.com")).toHaveLength(1);
    h.upstream.setA("api.example.com", ["23.45.67.90"], 60);
    now += 59_000;
    const late = (await udpExchange(h.port, encodeQuery("api.example.com")))!;
    expect(aData(dnsPacket.decode(late))).toEqual([PUBLIC_IP]);
    expect(ttls(late)).toEqual([1]);
    now += 2_000;
    const renewed = (await udpExchange(h.port, encodeQuery("api.example.com")))!;
    expect(aData(dnsPacket.decode(renewed))).toEqual(["23.45.67.90"]);
    expect(ttls(renewed)).toEqual([30]);
    expect(h.upstream.queriesFor("api.example.com")).toHaveLength(2);
  });

  it("drops cached answers and refusals on a policy reload", async () => {
    const h = await harness();
    h.upstream.setA("new.example.org", [PUBLIC_IP]);
    for (let i = 0; i < 3; i++) {
      expect(rcode(await udpQuery(h.port, "new.example.org"))).toBe("NXDOMAIN");
      expect(aData(await udpQuery(h.port, "api.example.com"))).toEqual([SIDECAR_ADDRESS]);
    }
    h.ctx.setDecision({ ...h.ctx.decisionContext(), policy: testPolicy({ name: "fixture", egress: { allow: [{ host: "new.example.org" }] } }) });
    expect(aData(await udpQuery(h.port, "new.example.org"))).toEqual([SIDECAR_ADDRESS]);
    expect(rcode(await udpQuery(h.port, "api.example.com"))).toBe("NXDOMAIN");
    const after = h.ctx.sink.egress().filter((e) => e.name === "api.example.com").at(-1);
    expect(after).toMatchObject({ verdict: "block", reasons: ["undeclared-host"] });
    // The undeclared name was never asked upstream, before or after the reload.
    expect(h.upstream.queries.map((q) => q.name).filter((n) => n !== "api.example.com")).toEqual(["new.example.org"]);
  });

  it("still emits one event per query, and still counts every wildcard name, when answers come from the cache", async () => {
    const h = await harness();
    for (let i = 0; i < 5; i++) {
      await udpQuery(h.port, "api.example.com");
      await udpQuery(h.port, "undeclared.example.net");
    }
    const events = h.ctx.sink.egress();
    expect(events.filter((e) => e.name === "api.example.com").map((e) => e.verdict)).toEqual(Array(5).fill("allow"));
    expect(events.filter((e) => e.name === "undeclared.example.net").map((e) => e.verdict)).toEqual(Array(5).fill("block"));
    h.upstream.setA("a.svc.example.com", [PUBLIC_IP]).setA("b.svc.example.com", [PUBLIC_IP]);
    await udpQuery(h.port, "a.svc.example.com");
    await udpQuery(h.port, "a.svc.example.com");
    await udpQuery(h.port, "b.svc.example.com");
    const facts = h.ctx.names.observe(h.ctx.decisionContext().policy, "a.svc.example.com");
    expect(facts.uniqueSubdomainsPerMinute).toBe(2);
    expect(h.ctx.sink.egress()).toHaveLength(13);
  });
});
