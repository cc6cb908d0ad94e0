import { describe, expect, it } from "vitest";
import { HttpHeadParser, parseHttpHead } from "../../../src/sidecar/proxy/http/http-head.js";
import { parseAuthority } from "../../../src/sidecar/proxy/authority.js";
import { FirstFlightSniffer } from "../../../src/sidecar/proxy/first-flight.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");

describe("HttpHeadParser", () => {
  it("parses method, target, version and Host", () => {
    const head = "GET /a?b=1 HTTP/1.1\r\nHost: api.allowed.test:8080\r\nAccept: */*\r\n\r\n";
    const r = parseHttpHead(b(head + "body"));
    expect(r).toEqual({ kind: "done", head: { method: "GET", target: "/a?b=1", version: "1.1", host: "api.allowed.test:8080", rawHeaders: ["Host", "api.allowed.test:8080", "Accept", "*/*"], headBytes: head.length } });
  });

  it("finds the end of the head across one-byte pushes and keeps the byte count exact", () => {
    const text = "POST /x HTTP/1.0\r\nhOsT:  api.allowed.test \r\n\r\n";
    const p = new HttpHeadParser();
    const results = [...b(text + "tail")].map((byte) => p.push(Buffer.from([byte])));
    const done = results.find((r) => r.kind === "done");
    expect(done).toEqual({ kind: "done", head: { method: "POST", target: "/x", version: "1.0", host: "api.allowed.test", rawHeaders: ["hOsT", "api.allowed.test"], headBytes: text.length } });
    expect(results.indexOf(done!)).toBe(text.length - 1);
  });

  it("accepts a head without Host (HTTP/1.0) and treats an empty Host as none", () => {
    expect(parseHttpHead(b("GET / HTTP/1.0\r\n\r\n"))).toMatchObject({ kind: "done", head: { version: "1.0" } });
    const r = parseHttpHead(b("GET / HTTP/1.1\r\nHost:\r\n\r\n"));
    expect(r.kind).toBe("done");
    expect(r.kind === "done" && "host" in r.head).toBe(false);
  });

  it.each([
    ["duplicate Host", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"],
    ["Host with a space", "GET / HTTP/1.1\r\nHost: a.test b.test\r\n\r\n"],
    ["Host with a slash", "GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n"],
    ["Host with @", "GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n"],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: a.test\r\n b.test\r\n\r\n"],
    ["bare LF in a header", "GET / HTTP/1.1\r\nX: a\nHost: b.test\r\n\r\n"],
    ["NUL in a value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"],
    ["lowercase method", "get / HTTP/1.1\r\n\r\n"],
    ["HTTP/2 version", "GET / HTTP/2.0\r\n\r\n"],
    ["space in target", "GET /a b HTTP/1.1\r\n\r\n"],
    ["header without colon", "GET / HTTP/1.1\r\nHost a.test\r\n\r\n"],
    ["space before colon", "GET / HTTP/1.1\r\nHost : a.test\r\n\r\n"],
  ])("rejects %s as malformed", (_label, text) => {
    expect(parseHttpHead(b(text))).toEqual({ kind: "error", reason: "malformed" });
  });

  it("stops at the limit, with or without a terminator in sight", () => {
    const p = new HttpHeadParser(1024);
    expect(p.push(b("GET / HTTP/1.1\r\nX: " + "a".repeat(1000)))).toEqual({ kind: "need-more" });
    expect(p.push(b("a".repeat(100)))).toEqual({ kind: "error", reason: "too-large" });
    expect(parseHttpHead(b("GET / HTTP/1.1\r\nX: " + "a".repeat(2000) + "\r\n\r\n"), 1024)).toEqual({ kind: "error", reason: "too-large" });
  });

  it("stays linear for one-byte pushes up to the limit", () => {
    const p = new HttpHeadParser();
    const started = performance.now();
    let r = p.push(b("GET / HTTP/1.1\r\n"));
    for (let i = 0; i < 17 * 1024 && r.kind === "need-more"; i++) r = p.push(b("a"));
    expect(r).toEqual({ kind: "error", reason: "too-large" });
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe("parseAuthority", () => {
  it.each([
    ["api.allowed.test:443", { host: "api.allowed.test", isIp: false, port: 443 }],
    ["api.allowed.test", { host: "api.allowed.test", isIp: false }],
    ["127.0.0.3:8443", { host: "127.0.0.3", isIp: true, port: 8443 }],
    ["[::1]:443", { host: "::1", isIp: true, port: 443 }],
  ])("parses %s", (raw, expected) => {
    expect(parseAuthority(raw)).toEqual(expected);
  });

  it.each(["", "a.test:", "a.test:0", "a.test:65536", "a.test:12x", "::1:443", "[::1", "[a.test]:443", "[::1]x", ":443"])("refuses %j", (raw) => {
    expect(parseAuthority(raw)).toBeUndefined();
  });

  it("can require a port (CONNECT)", () => {
    expect(parseAuthority("a.test", { requirePort: true })).toBeUndefined();
  });
});

describe("FirstFlightSniffer", () => {
  const sniff = (...chunks: string[]) => {
    const s = new FirstFlightSniffer({ maxHeadBytes: 16384 });
    let r;
    for (const c of chunks) r = s.push(b(c));
    return r;
  };

  it("recognises HTTP even when the method arrives a byte at a time", () => {
    expect(sniff("G", "E", "T", " / HTTP/1.1\r\nHost: a.test\r\n\r\n")).toMatchObject({ kind: "http", head: { host: "a.test" } });
  });

  it("calls binary, and text lines that are no request line, opaque (Postgres, SSH, Redis)", () => {
    expect(sniff("\x00\x00\x00\x08\x04\xd2\x16\x2f")).toEqual({ kind: "opaque" });
    expect(sniff("SSH-2.0-OpenSSH\r\n")).toEqual({ kind: "opaque" });
    expect(sniff("SET key value\r\n")).toEqual({ kind: "opaque" });
    expect(sniff("GETX\r\n")).toEqual({ kind: "opaque" });
  });

  it("takes for HTTP whatever a server would: any method token, leading empty lines, other versions", () => {
    expect(sniff("PROPFIND /x HTTP/1.1\r\nHost: a.test\r\n\r\n")).toMatchObject({ kind: "http", head: { method: "PROPFIND" } });
    expect(sniff("\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n")).toMatchObject({ kind: "http", head: { host: "a.test" } });
    // HTTP/2 prior knowledge is not parsed here, so it is refused rather than spliced blind.
    expect(sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).toMatchObject({ kind: "invalid", reason: "malformed-request" });
    expect(sniff("GET / HTTP/1.1\nHost: evil.test\n\n")).toMatchObject({ kind: "invalid", reason: "malformed-request" });
    expect(sniff("GE", "T / HTTP/1.1\r\nHost: a\r", "\nX: y\n")).toMatchObject({ kind: "invalid", reason: "malformed-request" });
  });

  it("maps parser failures to the decision's reason codes", () => {
    expect(sniff("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")).toMatchObject({ kind: "invalid", reason: "malformed-request" });
    expect(sniff("\x16\x03\x01\x00\x00")).toMatchObject({ kind: "invalid", reason: "malformed-client-hello" });
    const big = new FirstFlightSniffer({ maxHeadBytes: 64 });
    expect(big.push(b("GET /" + "a".repeat(100)))).toMatchObject({ kind: "invalid", reason: "header-too-large" });
  });

  it("inside a tunnel (http: false) an HTTP head is just opaque", () => {
    const s = new FirstFlightSniffer({ maxHeadBytes: 16384, http: false });
    expect(s.push(b("GET / HTTP/1.1\r\n\r\n"))).toEqual({ kind: "opaque" });
  });
});
