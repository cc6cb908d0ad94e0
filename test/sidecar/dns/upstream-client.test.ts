import dnsPacket from "dns-packet";
import { afterEach, describe, expect, it } from "vitest";
import { isHangarError } from "../../../src/core/errors.js";
import { UpstreamDnsClient } from "../../../src/sidecar/dns/upstream-client.js";
import { FakeDnsServer } from "../../support/fake-dns.js";

const servers: FakeDnsServer[] = [];
const clients: UpstreamDnsClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function fake(): Promise<FakeDnsServer> {
  const s = await FakeDnsServer.start();
  servers.push(s);
  return s;
}

function client(...upstreams: FakeDnsServer[]): UpstreamDnsClient {
  const c = new UpstreamDnsClient({ servers: upstreams.map((u) => u.server), timeoutMs: 300, retries: 1 });
  clients.push(c);
  return c;
}

describe("UpstreamDnsClient", () => {
  it("resolves A records with their TTL", async () => {
    const up = await fake();
    up.set("api.example.com", "A", {
      answers: [
        { type: "A", name: "api.example.com", ttl: 120, data: "23.45.67.89" },
        { type: "A", name: "api.example.com", ttl: 60, data: "23.45.67.90" },
      ],
    });
    expect(await client(up).resolveA("API.example.com.")).toEqual({ rcode: "NOERROR", ips: ["23.45.67.89", "23.45.67.90"], ttl: 60 });
    expect(up.queries).toEqual([expect.objectContaining({ name: "api.example.com", type: "A", transport: "udp" })]);
  });

  it("flattens a CNAME chain and ignores records off the chain", async () => {
    const up = await fake();
    up.set("www.example.com", "A", {
      answers: [
        { type: "CNAME", name: "www.example.com", ttl: 30, data: "edge.cdn.example" },
        { type: "CNAME", name: "edge.cdn.example", ttl: 300, data: "node7.cdn.example" },
        { type: "A", name: "node7.cdn.example", ttl: 300, data: "23.45.67.89" },
        { type: "A", name: "unrelated.example", ttl: 300, data: "23.1.1.1" },
      ],
    });
    expect(await client(up).resolveA("www.example.com")).toEqual({ rcode: "NOERROR", ips: ["23.45.67.89"], ttl: 30 });
  });

  it("reports NXDOMAIN with the SOA negative TTL, and NODATA as an empty answer", async () => {
    const up = await fake();
    const soa = { type: "SOA", name: "example.com", ttl: 900, data: { mname: "ns.example.com", rname: "h.example.com", minimum: 45 } } as const;
    up.set("gone.example.com", "A", { rcode: "NXDOMAIN", authorities: [soa] });
    up.set("v6only.example.com", "A", { authorities: [soa] });
    const c = client(up);
    expect(await c.resolveA("gone.example.com")).toEqual({ rcode: "NXDOMAIN", ips: [], ttl: 45 });
    expect(await c.resolveA("v6only.example.com")).toEqual({ rcode: "NOERROR", ips: [], ttl: 45 });
  });

  it("retries over TCP when the UDP answer is truncated", async () => {
    const up = await fake();
    up.set("big.example.com", "A", { answers: [{ type: "A", name: "big.example.com", ttl: 60, data: "23.45.67.89" }], truncateUdp: true });
    expect((await client(up).resolveA("big.example.com")).ips).toEqual(["23.45.67.89"]);
    expect(up.queries.map((q) => q.transport)).toEqual(["udp", "tcp"]);
  });

  it("ignores spoofed replies (wrong id, wrong question) and takes the real one", async () => {
    const up = await fake();
    up.set("api.example.com", "A", {
      answers: [{ type: "A", name: "api.example.com", ttl: 60, data: "23.45.67.89" }],
      before: (q) => [
        dnsPacket.encode({ type: "response", id: ((q.id ?? 0) + 1) & 0xffff, questions: q.questions, answers: [{ type: "A", name: "api.example.com", data: "6.6.6.6" }] }),
        dnsPacket.encode({ type: "response", id: q.id ?? 0, questions: [{ type: "A", name: "evil.example" }], answers: [{ type: "A", name: "evil.example", data: "6.6.6.6" }] }),
        Buffer.from("garbage"),
      ],
    });
    expect((await client(up).resolveA("api.example.com")).ips).toEqual(["23.45.67.89"]);
  });

  it("uses a random query id", async () => {
    const up = await fake();
    up.setA("api.example.com", ["23.45.67.89"]);
    const c = client(up);
    for (let i = 0; i < 8; i++) await c.resolveA("api.example.com");
    expect(new Set(up.queries.map((q) => q.id)).size).toBeGreaterThan(4);
  });

  it("moves to the next server on a timeout or SERVFAIL, and retries the list once", async () => {
    const silent = await fake();
    const broken = await fake();
    const good = await fake();
    silent.setDefault({ drop: true });
    broken.setDefault({ rcode: "SERVFAIL" });
    good.setA("api.example.com", ["23.45.67.89"]);
    expect((await client(silent, broken, good).resolveA("api.example.com")).ips).toEqual(["23.45.67.89"]);

    const flaky = await fake();
    let n = 0;
    flaky.setDefault(() => (n++ === 0 ? { drop: true } : { answers: [{ type: "A", name: "api.example.com", ttl: 5, data: "23.45.67.89" }] }));
    expect((await client(flaky).resolveA("api.example.com")).ips).toEqual(["23.45.67.89"]);
    expect(flaky.queries).toHaveLength(2);
  });

  it("throws HANGAR_DNS_UPSTREAM when every server fails", async () => {
    const up = await fake();
    up.setDefault({ rcode: "REFUSED" });
    await expect(client(up).resolveA("api.example.com")).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_DNS_UPSTREAM"));
    expect(up.queries).toHaveLength(2);
  });

  it("returns raw TXT and HTTPS records at the end of the chain", async () => {
    const up = await fake();
    up.set("api.example.com", "TXT", { answers: [{ type: "TXT", name: "api.example.com", ttl: 60, data: ["ab", "c"] }] });
    up.set("api.example.com", "HTTPS", { answers: [{ type: "UNKNOWN_65", name: "api.example.com", ttl: 70, data: Buffer.from([0, 1, 0]) } as never] });
    const c = client(up);
    const txt = await c.queryRecords("api.example.com", "TXT");
    expect(txt.records).toEqual([{ type: 16, ttl: 60, rdata: Buffer.from([2, 0x61, 0x62, 1, 0x63]) }]);
    const https = await c.queryRecords("api.example.com", "HTTPS");
    expect(https.records).toEqual([{ type: 65, ttl: 70, rdata: Buffer.from([0, 1, 0]) }]);
    expect(up.queries.map((q) => q.type)).toEqual(["TXT", "HTTPS"]);
  });

  it("close() lets a query in flight finish, then refuses; destroy() aborts", async () => {
    const up = await fake();
    up.set("slow.example.com", "A", { answers: [{ type: "A", name: "slow.example.com", ttl: 60, data: "23.45.67.89" }], delayMs: 100 });
    const c = new UpstreamDnsClient({ servers: [up.server], timeoutMs: 1000 });
    const pending = c.resolveA("slow.example.com");
    await c.close();
    expect((await pending).ips).toEqual(["23.45.67.89"]);
    await c.close();
    await expect(c.resolveA("slow.example.com")).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_CLOSED"));

    const d = new UpstreamDnsClient({ servers: [up.server], timeoutMs: 1000 });
    const aborted = d.resolveA("slow.example.com");
    await d.destroy();
    await expect(aborted).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_CLOSED"));
  });

  it("accepts only IPv4 upstream addresses", () => {
    expect(() => new UpstreamDnsClient({ servers: [] })).toThrow(/at least one/);
    expect(() => new UpstreamDnsClient({ servers: [{ host: "dns.example", port: 53 }] })).toThrow(/IPv4/);
    expect(() => new UpstreamDnsClient({ servers: [{ host: "::1", port: 53 }] })).toThrow(/IPv4/);
  });
});
