import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import dnsPacket from "dns-packet";
import { afterEach, describe, expect, it } from "vitest";
import { isHangarError } from "../../../src/core/errors.js";
import { DnsServer } from "../../../src/sidecar/dns/dns-server.js";
import { frameMessage } from "../../../src/sidecar/dns/tcp-framing.js";
import { testContext } from "../../support/sidecar-context.js";
import { FakeDnsServer } from "../../support/fake-dns.js";
import { UpstreamDnsClient } from "../../../src/sidecar/dns/upstream-client.js";
import {
  PUBLIC_IP,
  SIDECAR_ADDRESS,
  TcpDnsClient,
  aData,
  encodeQuery,
  rcode,
  type Decoded,
  startHarness,
  udpExchange,
  udpQuery,
  type Harness,
  type HarnessOptions,
  DNS_UDP,
  testUdpBinder,
} from "./helpers.js";

const POLICY: HarnessOptions["policy"] = {
  allow: [{ host: "api.example.com" }, { host: "big.example.com" }],
  dns: { recordTypes: ["A", "TXT"] },
};

let h: Harness | undefined;
const clients: TcpDnsClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await h?.close();
  h = undefined;
});

async function harness(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  h = await startHarness({ policy: POLICY, ...options });
  h.upstream.setA("api.example.com", [PUBLIC_IP]);
  // ~1.6 KB of TXT: over 512 bytes and over a 1232-byte EDNS payload.
  const chunks = Array.from({ length: 8 }, (_, i) => `${i}`.repeat(200));
  h.upstream.set("big.example.com", "TXT", { answers: [{ type: "TXT", name: "big.example.com", ttl: 60, data: chunks }] });
  return h;
}

async function tcp(port: number): Promise<TcpDnsClient> {
  const c = await TcpDnsClient.connect(port);
  clients.push(c);
  return c;
}

describe("DnsServer over TCP", () => {
  it("answers two queries on one connection", async () => {
    const { port } = await harness();
    const c = await tcp(port);
    c.send(encodeQuery("api.example.com", "A", { id: 1 }));
    c.send(encodeQuery("nope.example.net", "A", { id: 2 }));
    const replies = await c.waitReplies(2);
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(aData(byId.get(1)!)).toEqual([SIDECAR_ADDRESS]);
    expect(rcode(byId.get(2)!)).toBe("NXDOMAIN");
  });

  it("reassembles a query split across segments, byte by byte", async () => {
    const { port } = await harness();
    const c = await tcp(port);
    const framed = frameMessage(encodeQuery("api.example.com", "A", { id: 7 }));
    for (const byte of framed) {
      c.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, 1));
    }
    const [reply] = await c.waitReplies(1);
    expect(reply?.id).toBe(7);
    expect(aData(reply!)).toEqual([SIDECAR_ADDRESS]);
  });

  it("returns a large answer whole over TCP", async () => {
    const { port } = await harness();
    const c = await tcp(port);
    c.send(encodeQuery("big.example.com", "TXT"));
    const [reply] = await c.waitReplies(1);
    expect(reply?.flag_tc).toBe(false);
    expect(reply?.answers).toHaveLength(1);
  });

  it("closes a connection after maxQueriesPerConnection answers", async () => {
    const { port } = await harness({ limits: { maxQueriesPerConnection: 2 } });
    const c = await tcp(port);
    for (const id of [1, 2, 3]) c.send(encodeQuery("api.example.com", "A", { id }));
    await c.waitClosed();
    expect(c.replies).toHaveLength(2);
  });

  it("closes an idle connection", async () => {
    const { port } = await harness({ limits: { tcpIdleTimeoutMs: 100 } });
    const c = await tcp(port);
    await c.waitClosed(2000);
  });

  it("refuses connections beyond maxTcpConnections", async () => {
    const { port, server } = await harness({ limits: { maxTcpConnections: 1 } });
    await tcp(port);
    const extra = await tcp(port);
    await extra.waitClosed();
    expect(server.stats().tcpConnections).toBe(1);
  });
});

describe("DnsServer over UDP: sizes", () => {
  it("sets TC when the answer exceeds 512 bytes without EDNS", async () => {
    const { port } = await harness();
    const reply = await udpQuery(port, "big.example.com", "TXT");
    expect(reply.flag_tc).toBe(true);
    expect(reply.answers).toEqual([]);
  });

  it("sets TC above the EDNS size too, capped at our own 1232", async () => {
    const { port } = await harness();
    const reply = await udpQuery(port, "big.example.com", "TXT", { edns: 4096 });
    expect(reply.flag_tc).toBe(true);
    const small = await udpQuery(port, "api.example.com", "A", { edns: 4096 });
    expect(small.flag_tc).toBe(false);
    expect(small.additionals?.[0]).toMatchObject({ type: "OPT", udpPayloadSize: 1232 });
  });
});

describe("DnsServer: malformed input", () => {
  it("survives random bytes, a truncated header and junk, and answers the next query", async () => {
    const { port, ctx } = await harness();
    expect(await udpExchange(port, randomBytes(5), 200)).toBeUndefined();
    for (let i = 0; i < 50; i++) await udpExchange(port, randomBytes(1 + (i * 37) % 600), 20);
    const truncated = encodeQuery("api.example.com", "A", { id: 99 }).subarray(0, 20);
    const formerr = await udpExchange(port, truncated);
    expect(formerr).toBeDefined();
    const decoded = dnsPacket.decode(formerr!);
    expect(decoded.id).toBe(99);
    expect(rcode(decoded)).toBe("FORMERR");
    expect(aData(await udpQuery(port, "api.example.com"))).toEqual([SIDECAR_ADDRESS]);
    expect(ctx.sink.egress().some((e) => e.reasons.includes("malformed-request") && e.error === "short-header")).toBe(true);
  });

  it("answers FORMERR for two questions, a compression pointer in the question, and oversize queries", async () => {
    const { port } = await harness();
    const two = dnsPacket.encode({ type: "query", id: 5, questions: [{ name: "a.com", type: "A" }, { name: "b.com", type: "A" }] });
    expect(rcode(dnsPacket.decode((await udpExchange(port, two))!))).toBe("FORMERR");
    const pointer = Buffer.concat([encodeQuery("x", "A", { id: 6 }).subarray(0, 12), Buffer.from([0xc0, 0x00, 0, 1, 0, 1])]);
    expect(rcode(dnsPacket.decode((await udpExchange(port, pointer))!))).toBe("FORMERR");
    const huge = Buffer.concat([encodeQuery("api.example.com", "A", { id: 8 }), Buffer.alloc(5000)]);
    expect(rcode(dnsPacket.decode((await udpExchange(port, huge))!))).toBe("FORMERR");
  });

  it("refuses a label containing a dot byte (it is not the name it would print as)", async () => {
    const { port, upstream } = await harness();
    // One label "api.example" then "com": prints like api.example.com but is a different name.
    const q = encodeQuery("x.com", "A", { id: 11 });
    const body = Buffer.concat([Buffer.from([11]), Buffer.from("api.example"), Buffer.from([3]), Buffer.from("com"), Buffer.from([0, 0, 1, 0, 1])]);
    const reply = await udpExchange(port, Buffer.concat([q.subarray(0, 12), body]));
    expect(rcode(dnsPacket.decode(reply!))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
  });

  it("refuses class CH, ignores responses, and answers NOTIMP for other opcodes", async () => {
    const { port } = await harness();
    expect(rcode(await udpQuery(port, "version.bind", "TXT", { klass: "CH" }))).toBe("REFUSED");
    const response = dnsPacket.encode({ type: "response", id: 3, questions: [{ name: "api.example.com", type: "A" }] });
    expect(await udpExchange(port, response, 200)).toBeUndefined();
    const notify = encodeQuery("api.example.com", "A", { id: 4 });
    notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2);
    expect(rcode(dnsPacket.decode((await udpExchange(port, notify))!))).toBe("NOTIMP");
  });

  it("drops a TCP connection announcing a huge length, and keeps serving", async () => {
    const { port, ctx } = await harness();
    const bad = await tcp(port);
    bad.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
    await bad.waitClosed();
    expect(ctx.sink.egress().some((e) => e.error === "bad-tcp-length")).toBe(true);
    const good = await tcp(port);
    good.send(encodeQuery("api.example.com"));
    expect(aData((await good.waitReplies(1))[0]!)).toEqual([SIDECAR_ADDRESS]);
  });
});

describe("DnsServer lifecycle", () => {
  async function slowHarness(): Promise<Harness> {
    const hh = await harness();
    hh.upstream.set("api.example.com", "A", { answers: [{ type: "A", name: "api.example.com", ttl: 60, data: PUBLIC_IP }], delayMs: 200 });
    return hh;
  }

  it("answers a burst from several clients at once, each reply to its own sender and query (replies leave in bursts)", async () => {
    const { port } = await harness();
    const names = ["api.example.com", "nowhere.example.org"];
    const clients = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<Socket>((resolve) => {
            const udp = createSocket("udp4");
            udp.bind(0, "127.0.0.1", () => resolve(udp));
          }),
      ),
    );
    try {
      // Each client asks 20 questions without waiting: ids 1000·c + i, alternating an allowed and a denied name.
      const replies = clients.map((udp, c) => {
        const got = new Map<number, Decoded>();
        const done = new Promise<Map<number, Decoded>>((resolve) =>
          udp.on("message", (msg) => {
            const p = dnsPacket.decode(msg);
            got.set(p.id!, p);
            if (got.size === 20) resolve(got);
          }),
        );
        for (let i = 0; i < 20; i++) udp.send(encodeQuery(names[i % 2]!, "A", { id: 1000 * c + i }), port, "127.0.0.1");
        return done;
      });
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("not every query was answered")), 3000));
      const all = await Promise.race([Promise.all(replies), timeout]);
      all.forEach((got, c) => {
        expect([...got.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 1000 * c + i));
        for (const [id, p] of got) {
          expect(p.questions?.[0]?.name).toBe(names[(id - 1000 * c) % 2]);
          expect(rcode(p)).toBe((id - 1000 * c) % 2 === 0 ? "NOERROR" : "NXDOMAIN");
        }
      });
    } finally {
      for (const udp of clients) udp.close();
    }
  });

  it("close() answers queries in flight, is idempotent, and listen() afterwards throws HANGAR_CLOSED", async () => {
    const { port, server } = await slowHarness();
    const pending = udpQuery(port, "api.example.com");
    await new Promise((r) => setTimeout(r, 50));
    const first = server.close();
    const second = server.close();
    expect(second).toBe(first);
    const reply = await pending;
    expect(aData(reply)).toEqual([SIDECAR_ADDRESS]);
    await first;
    expect(await udpExchange(port, encodeQuery("api.example.com"), 200)).toBeUndefined();
    await expect(server.listen()).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_CLOSED"));
    await server.close();
    await server.destroy();
  });

  it("close() answers a TCP query in flight and ends idle connections promptly", async () => {
    const { port, server } = await slowHarness();
    const idle = await tcp(port);
    const busy = await tcp(port);
    busy.send(encodeQuery("api.example.com"));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(aData((await busy.waitReplies(1))[0]!)).toEqual([SIDECAR_ADDRESS]);
    await idle.waitClosed();
    await busy.waitClosed();
  });

  it("destroy() drops queries in flight at once", async () => {
    const { port, server } = await slowHarness();
    const pending = udpExchange(port, encodeQuery("api.example.com"), 500);
    await new Promise((r) => setTimeout(r, 50));
    await server.destroy();
    expect(await pending).toBeUndefined();
    await server.destroy();
  });

  it("close() before listen() and listen() twice", async () => {
    const upstream = await FakeDnsServer.start();
    const ctx = testContext({ policy: POLICY });
    const records = new UpstreamDnsClient({ servers: [upstream.server] });
    const a = new DnsServer({ context: ctx, records, port: 0, ...testUdpBinder() });
    await a.close();
    await expect(a.listen()).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_CLOSED"));
    const b = new DnsServer({ context: ctx, records, port: 0, ...testUdpBinder() });
    expect(await b.listen()).toMatchObject({ host: "127.0.0.1", udp: DNS_UDP });
    await expect(b.listen()).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_USAGE"));
    await b.close();
    await upstream.close();
  });

  it("rejects a wildcard bind address without an explicit answer address", () => {
    const ctx = testContext({ policy: POLICY });
    const records = new UpstreamDnsClient({ servers: [{ host: "127.0.0.1", port: 53 }] });
    expect(() => new DnsServer({ context: ctx, records, host: "0.0.0.0" })).toThrow(/answer address/);
  });
});
