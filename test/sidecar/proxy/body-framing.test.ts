import { describe, expect, it } from "vitest";
import { ChunkedDecoder, requestFraming, responseFraming } from "../../../src/sidecar/proxy/http/body-framing.js";

/**
 * The sidecar's own HTTP/1.1 body framing: which requests are framed how (and which are
 * malformed), how a response is delimited, and the chunked decoder, byte by byte.
 */
const h = (...pairs: string[]): string[] => pairs;

describe("requestFraming", () => {
  it.each([
    ["no framing fields: no body", h("Host", "a.test"), "1.1", { kind: "none" }],
    ["Content-Length: 0: no body", h("Content-Length", "0"), "1.1", { kind: "none" }],
    ["Content-Length", h("content-length", "12"), "1.1", { kind: "length", length: 12 }],
    ["chunked, any case", h("Transfer-Encoding", "ChUnKeD"), "1.1", { kind: "chunked" }],
    ["HTTP/1.0 with a length", h("Content-Length", "3"), "1.0", { kind: "length", length: 3 }],
  ] as const)("%s", (_label, raw, version, want) => {
    expect(requestFraming(raw, version)).toEqual(want);
  });

  it.each([
    ["CL and TE together", h("Content-Length", "3", "Transfer-Encoding", "chunked"), "1.1"],
    ["two Transfer-Encoding fields", h("Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked"), "1.1"],
    ["a coding list", h("Transfer-Encoding", "gzip, chunked"), "1.1"],
    ["a coding other than chunked", h("Transfer-Encoding", "xchunked"), "1.1"],
    ["chunked on HTTP/1.0", h("Transfer-Encoding", "chunked"), "1.0"],
    ["two Content-Length fields, even equal", h("Content-Length", "3", "Content-Length", "3"), "1.1"],
    ["a Content-Length list", h("Content-Length", "3, 3"), "1.1"],
    ["a signed Content-Length", h("Content-Length", "+3"), "1.1"],
    ["a Content-Length past 2^53", h("Content-Length", "9".repeat(16)), "1.1"],
  ] as const)("refuses %s", (_label, raw, version) => {
    expect(requestFraming(raw, version)).toBeUndefined();
  });
});

describe("responseFraming", () => {
  it("has no body for HEAD, 1xx, 204 and 304, whatever the fields say", () => {
    expect(responseFraming(200, h("Content-Length", "10"), "HEAD")).toEqual({ kind: "none" });
    for (const status of [100, 204, 304]) expect(responseFraming(status, h("Content-Length", "10"), "GET")).toEqual({ kind: "none" });
  });

  it("frames by chunked (over a length), by length, or until the upstream closes", () => {
    expect(responseFraming(200, h("Content-Length", "10", "Transfer-Encoding", "chunked"), "GET")).toEqual({ kind: "chunked" });
    expect(responseFraming(200, h("Transfer-Encoding", "gzip"), "GET")).toEqual({ kind: "close" });
    expect(responseFraming(200, h("Content-Length", "10"), "GET")).toEqual({ kind: "length", length: 10 });
    expect(responseFraming(200, h("Content-Length", "10", "Content-Length", "10"), "GET")).toEqual({ kind: "length", length: 10 });
    expect(responseFraming(200, h(), "GET")).toEqual({ kind: "close" });
  });

  it("distrusts two different lengths, or one that is not a number", () => {
    expect(responseFraming(200, h("Content-Length", "10", "Content-Length", "11"), "GET")).toBeUndefined();
    expect(responseFraming(200, h("Content-Length", "ten"), "GET")).toBeUndefined();
  });
});

/** Decodes `text` pushed in pieces of `step` bytes: the data, and where the body ended. */
function decode(text: string, step: number): { data: string; used: number; failed: boolean } {
  const d = new ChunkedDecoder();
  const bytes = Buffer.from(text, "latin1");
  let data = "";
  let used = 0;
  for (let at = 0; at < bytes.length; at += step) {
    const piece = bytes.subarray(at, at + step);
    const n = d.push(piece, (b) => (data += b.toString("latin1")));
    if (n === -1) return { data, used, failed: true };
    used += n;
    if (d.done) break;
  }
  return { data, used, failed: false };
}

describe("ChunkedDecoder", () => {
  const body = "5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";

  it.each([1, 2, 7, 1000])("decodes data, extensions and trailers, pushed %i bytes at a time, and stops at the end", (step) => {
    const r = decode(`${body}GET /next HTTP/1.1\r\n\r\n`, step);
    expect(r).toEqual({ data: "hello world", used: body.length, failed: false });
  });

  it("counts data bytes, not framing", () => {
    const d = new ChunkedDecoder();
    d.push(Buffer.from(body, "latin1"));
    expect(d.done).toBe(true);
    expect(d.dataBytes).toBe(11);
  });

  it.each([
    ["a size that is not hex", "0x5\r\nhello\r\n0\r\n\r\n"],
    ["a space after the size", "5 \r\nhello\r\n0\r\n\r\n"],
    ["an empty size", "\r\nhello\r\n0\r\n\r\n"],
    ["a bare LF after the size", "5\nhello\r\n0\r\n\r\n"],
    ["data longer than its size", "5\r\nhello!\r\n0\r\n\r\n"],
    ["a bare LF after the data", "5\r\nhello\n0\r\n\r\n"],
    ["a CR inside an extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"],
    ["a folded trailer", "0\r\nX-T: 1\r\n folded\r\n\r\n"],
    ["a bare LF ending the trailers", "0\r\n\n"],
    ["a size past 2^52", `${"f".repeat(14)}\r\n`],
  ])("refuses %s", (_label, text) => {
    for (const step of [1, 1000]) expect(decode(text, step).failed).toBe(true);
  });
});
