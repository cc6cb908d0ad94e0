import { describe, expect, it, beforeAll } from "vitest";
import { ClientHelloParser, parseClientHello, clientHelloInputLimit } from "../../../src/sidecar/proxy/client-hello.js";
import { captureClientHello, splitIntoRecords } from "./harness.js";

let hello: Buffer;
let helloAlpn: Buffer;
let helloNoSni: Buffer;

beforeAll(async () => {
  hello = await captureClientHello({ servername: "api.allowed.test" });
  helloAlpn = await captureClientHello({ servername: "Api.Allowed.Test", alpn: ["h2", "http/1.1"] });
  helloNoSni = await captureClientHello({});
});

function feedBytewise(bytes: Buffer): ReturnType<ClientHelloParser["push"]>[] {
  const p = new ClientHelloParser();
  const results = [];
  for (let i = 0; i < bytes.length; i++) results.push(p.push(bytes.subarray(i, i + 1)));
  return results;
}

describe("ClientHelloParser", () => {
  it("reads the SNI of a real Node TLS client", () => {
    expect(parseClientHello(hello)).toEqual({ kind: "done", sni: "api.allowed.test" });
  });

  it("reads ALPN and keeps the SNI as sent (normalising is the decision's job)", () => {
    expect(parseClientHello(helloAlpn)).toEqual({ kind: "done", sni: "Api.Allowed.Test", alpn: ["h2", "http/1.1"] });
  });

  it("reports no SNI when the client sent none", () => {
    expect(parseClientHello(helloNoSni)).toEqual({ kind: "done" });
  });

  it("reassembles a ClientHello delivered one byte at a time", () => {
    const results = feedBytewise(hello);
    expect(results.slice(0, -1).every((r) => r.kind === "need-more")).toBe(true);
    expect(results.at(-1)).toEqual({ kind: "done", sni: "api.allowed.test" });
  });

  it("reassembles a ClientHello split across two TLS records, and across many", () => {
    expect(parseClientHello(splitIntoRecords(hello, [40]))).toEqual({ kind: "done", sni: "api.allowed.test" });
    expect(parseClientHello(splitIntoRecords(hello, [1, 2, 3, 5, 8, 13, 21, 34]))).toEqual({ kind: "done", sni: "api.allowed.test" });
    // Two records, one byte at a time: both reassemblies at once.
    expect(feedBytewise(splitIntoRecords(hello, [3])).at(-1)).toEqual({ kind: "done", sni: "api.allowed.test" });
  });

  it("needs more (never errors) on every strict prefix", () => {
    for (let n = 0; n < hello.length; n++) expect(parseClientHello(hello.subarray(0, n)).kind).toBe("need-more");
  });

  it("rejects what is not a TLS handshake record", () => {
    expect(parseClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n"))).toEqual({ kind: "error", reason: "not-handshake" });
    const alert = Buffer.from(hello);
    alert[0] = 21;
    expect(parseClientHello(alert)).toEqual({ kind: "error", reason: "not-handshake" });
  });

  it("rejects zero-length and oversized records, and too many records", () => {
    expect(parseClientHello(Buffer.from([0x16, 3, 1, 0, 0]))).toEqual({ kind: "error", reason: "bad-record" });
    expect(parseClientHello(Buffer.from([0x16, 3, 1, 0x40, 0x01]))).toEqual({ kind: "error", reason: "bad-record" });
    expect(parseClientHello(splitIntoRecords(hello, new Array(100).fill(1)))).toEqual({ kind: "error", reason: "too-many-records" });
  });

  it("rejects a handshake that is not a ClientHello, or that claims more than the limit", () => {
    const serverHello = Buffer.from(hello);
    serverHello[5] = 2;
    expect(parseClientHello(serverHello)).toEqual({ kind: "error", reason: "not-client-hello" });
    const huge = Buffer.from([0x16, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]); // claims 64 KiB
    expect(parseClientHello(huge)).toEqual({ kind: "error", reason: "too-large" });
    expect(parseClientHello(hello, 64)).toEqual({ kind: "error", reason: "too-large" });
  });

  it("rejects inner lengths that overrun their bounds instead of reading past them", () => {
    // Corrupt the session-id length (offset 5 record + 4 handshake + 2 version + 32 random).
    const bad = Buffer.from(hello);
    bad[43] = 0xff;
    expect(parseClientHello(bad)).toMatchObject({ kind: "error" });
    // Corrupt the extensions block length: it must match the bytes that remain exactly.
    const p = extensionsOffset(hello);
    const worse = Buffer.from(hello);
    worse.writeUInt16BE(worse.readUInt16BE(p) + 1, p);
    expect(parseClientHello(worse)).toEqual({ kind: "error", reason: "bad-length" });
  });

  it("never throws on mutated input (bounded fuzz)", () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      const m = Buffer.from(hello);
      for (let k = 0; k < 1 + rand(4); k++) m[5 + rand(m.length - 5)] = rand(256);
      const cut = m.subarray(0, rand(m.length + 1));
      expect(() => parseClientHello(cut)).not.toThrow();
    }
  });

  it("bounds the input a caller must keep", () => {
    expect(clientHelloInputLimit()).toBeLessThan(17 * 1024);
  });
});

/** Offset of the extensions length field in a single-record ClientHello. */
function extensionsOffset(flight: Buffer): number {
  let p = 5 + 4 + 2 + 32;
  p += 1 + flight[p]!;
  p += 2 + flight.readUInt16BE(p);
  p += 1 + flight[p]!;
  return p;
}
