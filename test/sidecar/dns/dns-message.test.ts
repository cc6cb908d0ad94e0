import { randomBytes } from "node:crypto";
import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { QTYPE, RCODE, buildResponse, ipv4Rdata, parseQuery, recordTypeName } from "../../../src/sidecar/dns/dns-message.js";
import { LengthPrefixedReader, frameMessage } from "../../../src/sidecar/dns/tcp-framing.js";
import { SVCB_KEYS, encodeSvcb, rewriteSvcb } from "../../../src/sidecar/dns/svcb-params.js";
import { encodeQuery } from "./helpers.js";

describe("parseQuery", () => {
  it("reads the question, keeps the raw section and the EDNS size", () => {
    const parsed = parseQuery(encodeQuery("Api.Example.com", "A", { id: 77, edns: 1400 }), 4096);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.query).toMatchObject({ id: 77, name: "Api.Example.com", plainName: true, qtype: QTYPE.A, qclass: 1, edns: { udpSize: 1400, version: 0 } });
  });

  it("escapes non-plain label bytes so they cannot pass for another name", () => {
    const header = encodeQuery("x", "A").subarray(0, 12);
    const parsed = parseQuery(Buffer.concat([header, Buffer.from([3, 0x61, 0x2e, 0xff, 0, 0, 1, 0, 1])]), 4096);
    expect(parsed.ok && parsed.query.name).toBe("a\\046\\255");
    expect(parsed.ok && parsed.query.plainName).toBe(false);
  });

  it("reads plain names of every label shape as sent, with their lowercase beside (the same string when already lowercase)", () => {
    const names = ["a", "api.example.com", "Api.Example.COM", "x_1-y.B.c", `${"Q".repeat(63)}.${"r".repeat(63)}.${"s".repeat(63)}.${"t".repeat(61)}`, "ZZ.zz", "0.1.2.3"];
    for (const name of names) {
      const parsed = parseQuery(encodeQuery(name, "A"), 4096);
      if (!parsed.ok) throw new Error(`${name}: ${parsed.rejection.reason}`);
      expect(parsed.query).toMatchObject({ name, lowerName: name.toLowerCase(), plainName: true });
      expect(parsed.query.question).toEqual(encodeQuery(name, "A").subarray(12, 12 + parsed.query.question.length));
      if (name === name.toLowerCase()) expect(parsed.query.lowerName).toBe(parsed.query.name);
    }
    // A name with one odd byte is escaped whole, capitals kept, and never treated as plain.
    const header = encodeQuery("x", "A").subarray(0, 12);
    const parsed = parseQuery(Buffer.concat([header, Buffer.from([2, 0x41, 0x62, 3, 0x61, 0x20, 0x62, 0, 0, 1, 0, 1])]), 4096);
    expect(parsed.ok && parsed.query).toMatchObject({ name: "Ab.a\\032b", lowerName: "Ab.a\\032b", plainName: false });
  });

  it("never throws on random input", () => {
    for (let i = 0; i < 5000; i++) {
      const buf = randomBytes(i % 300);
      expect(() => parseQuery(buf, 4096)).not.toThrow();
    }
  });

  it("rejects an over-long name", () => {
    const header = encodeQuery("x", "A").subarray(0, 12);
    const labels = Buffer.concat(Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])));
    const parsed = parseQuery(Buffer.concat([header, labels, Buffer.from([0, 0, 1, 0, 1])]), 4096);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.rejection.header?.rcode).toBe(RCODE.FORMERR);
  });
});

describe("buildResponse", () => {
  it("encodes answers that dns-packet reads back, and truncates when too big", () => {
    const parsed = parseQuery(encodeQuery("api.example.com", "A", { id: 9 }), 4096);
    if (!parsed.ok) throw new Error("parse");
    const answers = Array.from({ length: 40 }, (_, i) => ({ type: QTYPE.A, ttl: 30, rdata: ipv4Rdata(`23.0.0.${i}`) }));
    const small = dnsPacket.decode(buildResponse(parsed.query, { rcode: RCODE.NOERROR, answers: answers.slice(0, 2), maxBytes: 512, ednsUdpSize: 1232 }));
    expect(small.answers?.map((a) => a.type === "A" && [a.name, a.data])).toEqual([["api.example.com", "23.0.0.0"], ["api.example.com", "23.0.0.1"]]);
    const big = dnsPacket.decode(buildResponse(parsed.query, { rcode: RCODE.NOERROR, answers, maxBytes: 512, ednsUdpSize: 1232 }));
    expect(big.flag_tc).toBe(true);
    expect(big.answers).toEqual([]);
  });

  it("answers BADVERS to an EDNS version it does not speak", () => {
    const q = encodeQuery("api.example.com", "A", { edns: 1232 });
    q.writeUInt8(1, q.length - 5); // OPT TTL byte 2: EDNS version
    const parsed = parseQuery(q, 4096);
    if (!parsed.ok) throw new Error("parse");
    const out = buildResponse(parsed.query, { rcode: RCODE.NOERROR, maxBytes: 512, ednsUdpSize: 1232 });
    const opt = dnsPacket.decode(out).additionals?.[0];
    expect(opt && opt.type === "OPT" && opt.extendedRcode).toBe(1);
  });

  it("names types, RFC 3597 style for unknown ones", () => {
    expect([1, 28, 65, 64, 16, 255, 4711].map(recordTypeName)).toEqual(["A", "AAAA", "HTTPS", "SVCB", "TXT", "ANY", "TYPE4711"]);
  });
});

describe("LengthPrefixedReader", () => {
  it("splits and joins frames, and refuses a length over the limit", () => {
    const r = new LengthPrefixedReader(100);
    const two = Buffer.concat([frameMessage(Buffer.from("abc")), frameMessage(Buffer.from("de"))]);
    expect(r.push(two.subarray(0, 4)).map(String)).toEqual([]);
    expect(r.push(two.subarray(4)).map(String)).toEqual(["abc", "de"]);
    expect(r.buffered).toBe(0);
    expect(() => r.push(Buffer.from([0x01, 0x00]))).toThrow(/outside/);
  });
});

describe("rewriteSvcb", () => {
  it("strips ech and ipv6hint (also from mandatory) and rewrites ipv4hint", () => {
    const rdata = encodeSvcb(1, "svc.example.com", [
      [SVCB_KEYS.mandatory, Buffer.from([0, SVCB_KEYS.ech])],
      [SVCB_KEYS.ipv4hint, Buffer.from([23, 1, 2, 3, 23, 1, 2, 4])],
      [SVCB_KEYS.ech, Buffer.from("x")],
      [SVCB_KEYS.ipv6hint, Buffer.alloc(16)],
    ]);
    const out = rewriteSvcb(rdata, "10.9.8.7");
    expect(out?.ipv4Hints).toEqual(["23.1.2.3", "23.1.2.4"]);
    expect(out?.rdata).toEqual(encodeSvcb(1, "svc.example.com", [[SVCB_KEYS.ipv4hint, Buffer.from([10, 9, 8, 7])]]));
    expect(rewriteSvcb(rdata)?.rdata).toEqual(encodeSvcb(1, "svc.example.com", [[SVCB_KEYS.ipv4hint, Buffer.from([23, 1, 2, 3, 23, 1, 2, 4])]]));
  });

  it("drops malformed data", () => {
    expect(rewriteSvcb(Buffer.from([0, 1]))).toBeUndefined();
    expect(rewriteSvcb(Buffer.from([0, 1, 0, 0, 4, 0, 3, 1, 2, 3]))).toBeUndefined();
    expect(rewriteSvcb(Buffer.from([0, 1, 0, 0, 4, 0, 8, 1]))).toBeUndefined();
    for (let i = 0; i < 2000; i++) expect(() => rewriteSvcb(randomBytes(i % 64))).not.toThrow();
  });
});
