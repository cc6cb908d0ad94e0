import { afterEach, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../../src/core/events.js";
import { withExplicit, withTransparent, type Scenario } from "./fixtures.js";
import { connectTcp, readAll, readResponse } from "./harness.js";

/**
 * Request smuggling, on both HTTP paths (the explicit proxy in absolute form, a transparent
 * port by Host). A smuggling shape is one two parsers may frame differently: CL.TE, TE.CL,
 * obfuscated or duplicated Transfer-Encoding, duplicate Content-Length, obs-fold, bare LF.
 * Each is refused with a 400 and a `malformed-request` block event, or is provably harmless:
 * the declared upstream serves exactly the requests that were decided, with the body bytes
 * they declared. In every case the undeclared upstream (evil.test) receives nothing.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

type Path = "explicit" | "transparent";

interface Rig {
  readonly s: Scenario;
  /** Where the client connects: the proxy port, or the transparent listener's. */
  readonly port: number;
  /** The request target for `path` on this path: absolute form for the proxy, origin form otherwise. */
  target(path: string, host?: string): string;
  /** The Host header value for the declared upstream. */
  readonly host: string;
}

async function rig(path: Path): Promise<Rig> {
  if (path === "explicit") {
    const e = await withExplicit({ kind: "http" });
    disposers.push(e.dispose);
    return { s: e, port: e.proxyPort, host: `api.allowed.test:${e.port}`, target: (p, h = `api.allowed.test:${e.port}`) => `http://${h}${p}` };
  }
  const t = await withTransparent({ kind: "http" });
  disposers.push(t.dispose);
  return { s: t, port: t.port, host: `api.allowed.test:${t.port}`, target: (p) => p };
}

/** What the declared address served, as "host path bodyBytes". */
function served(s: Scenario): string[] {
  return (s.allowed as unknown as { requests: { host?: string; path: string; bodyBytes: number }[] }).requests.map((r) => `${r.host ?? ""} ${r.path} ${r.bodyBytes}`);
}

function decides(s: Scenario, verdict: EgressEvent["verdict"]): EgressEvent[] {
  return s.sink.egress().filter((e) => e.phase === "decide" && e.verdict === verdict);
}

/** A request head from raw lines (no line endings), each ended by `eol`, then the blank line and `body`. */
function message(requestLine: string, lines: readonly string[], body = "", eol = "\r\n"): string {
  return `${requestLine}${eol}${lines.map((l) => `${l}${eol}`).join("")}${eol}${body}`;
}

/** A request hidden in a body: what a smuggler wants the upstream to read as a second request. */
const HIDDEN = "GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n";
const chunk = (data: string): string => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`;

interface RefusedCase {
  readonly name: string;
  /** The whole request, given the path's request target and Host. */
  readonly bytes: (r: Rig) => string;
}

const post = (r: Rig, lines: readonly string[], body: string, eol?: string): string => message(`POST ${r.target("/upload")} HTTP/1.1`, [`Host: ${r.host}`, ...lines], body, eol);

/** Shapes the sidecar's framing refuses before the request is decided: nothing is forwarded at all. */
const REFUSED: readonly RefusedCase[] = [
  // CL.TE: a front end that frames by Content-Length forwards the hidden request as body;
  // a back end that frames by chunks reads it as a second request.
  { name: "CL.TE: Content-Length and Transfer-Encoding: chunked", bytes: (r) => post(r, [`Content-Length: ${5 + HIDDEN.length}`, "Transfer-Encoding: chunked"], `0\r\n\r\n${HIDDEN}`) },
  // TE.CL: the reverse, the hidden request inside a chunk that a CL parser stops short of.
  { name: "TE.CL: Transfer-Encoding: chunked then Content-Length", bytes: (r) => post(r, ["Transfer-Encoding: chunked", "Content-Length: 4"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: Transfer-Encoding: xchunked", bytes: (r) => post(r, ["Transfer-Encoding: xchunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: Transfer-Encoding: chunked, identity", bytes: (r) => post(r, ["Transfer-Encoding: chunked, identity"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: duplicated Transfer-Encoding (chunked, then identity)", bytes: (r) => post(r, ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  // Only exactly `chunked`, once: a coding list or a second field is refused even with chunked
  // last, because a parser that reads the first coding, or the first field, frames it otherwise.
  { name: "TE.TE: Transfer-Encoding: identity, chunked (chunked last)", bytes: (r) => post(r, ["Transfer-Encoding: identity, chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: duplicated Transfer-Encoding with chunked last", bytes: (r) => post(r, ["Transfer-Encoding: identity", "Transfer-Encoding: chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: Transfer-Encoding: chunked on HTTP/1.0", bytes: (r) => message(`POST ${r.target("/upload")} HTTP/1.0`, [`Host: ${r.host}`, "Transfer-Encoding: chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: duplicated Transfer-Encoding: chunked", bytes: (r) => post(r, ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: space before the colon", bytes: (r) => post(r, ["Transfer-Encoding : chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: tab before the colon", bytes: (r) => post(r, ["Transfer-Encoding\t: chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: a leading space before the name (a continuation line)", bytes: (r) => post(r, ["X-Pad: 1", " Transfer-Encoding: chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: Transfer-Encoding folded onto a continuation line", bytes: (r) => post(r, ["Transfer-Encoding:", " chunked"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "TE.TE: Transfer-Encoding with a NUL in its value", bytes: (r) => post(r, ["Transfer-Encoding: chunked\x00"], `${chunk(HIDDEN)}0\r\n\r\n`) },
  { name: "duplicate Content-Length with different values", bytes: (r) => post(r, ["Content-Length: 0", `Content-Length: ${HIDDEN.length}`], HIDDEN) },
  { name: "duplicate Content-Length with equal values", bytes: (r) => post(r, [`Content-Length: ${HIDDEN.length}`, `Content-Length: ${HIDDEN.length}`], HIDDEN) },
  { name: "Content-Length as a list", bytes: (r) => post(r, [`Content-Length: 0, ${HIDDEN.length}`], HIDDEN) },
  { name: "Content-Length with a sign", bytes: (r) => post(r, [`Content-Length: +${HIDDEN.length}`], HIDDEN) },
  { name: "obs-fold continuation of an ordinary header", bytes: (r) => message(`GET ${r.target("/fold")} HTTP/1.1`, [`Host: ${r.host}`, "X-Folded: a", " b"]) },
  { name: "obs-fold continuation of Host", bytes: (r) => message(`GET ${r.target("/fold")} HTTP/1.1`, [`Host: ${r.host}`, " evil.test"]) },
  { name: "bare LF inside a head that ends in CRLF CRLF", bytes: (r) => `GET ${r.target("/lf")} HTTP/1.1\r\nHost: ${r.host}\nX-Next: evil.test\r\n\r\n` },
  { name: "bare CR inside a header line", bytes: (r) => `GET ${r.target("/cr")} HTTP/1.1\r\nHost: ${r.host}\rX-Next: evil.test\r\n\r\n` },
];

/** A request head with bare LF line endings throughout (no CRLF CRLF anywhere). */
const bareLf = (r: Rig): string => message(`GET ${r.target("/lf")} HTTP/1.1`, [`Host: ${r.host}`], "", "\n");

async function expectRefused(r: Rig, path: Path, text: string, servedBefore: string[]): Promise<void> {
  expect(text).toMatch(/^HTTP\/1\.1 400 /);
  const block = await r.s.sink.waitFor((e) => e.phase === "decide" && e.verdict === "block");
  expect(block).toMatchObject({ path, protocol: "http", reasons: ["malformed-request"] });
  expect(served(r.s)).toEqual(servedBefore);
  expect(decides(r.s, "allow")).toHaveLength(servedBefore.length);
  expect(r.s.evil.connections).toBe(0);
}

for (const path of ["explicit", "transparent"] as const) {
  describe(`${path}: smuggling shapes are refused before anything is forwarded`, () => {
    for (const c of REFUSED) {
      it(`refuses ${c.name}`, async () => {
        const r = await rig(path);
        const s = await connectTcp(r.port);
        const all = readAll(s);
        s.write(c.bytes(r));
        await expectRefused(r, path, (await all).toString("latin1"), []);
        expect(r.s.allowed.connections).toBe(0);
      });

      it(`refuses ${c.name} after a good request on the same connection`, async () => {
        const r = await rig(path);
        const s = await connectTcp(r.port);
        s.write(message(`GET ${r.target("/first")} HTTP/1.1`, [`Host: ${r.host}`]));
        expect(await readResponse(s)).toMatch(/^HTTP\/1\.1 200 /);
        const rest = readAll(s);
        s.write(c.bytes(r));
        await expectRefused(r, path, (await rest).toString("latin1"), [`${r.host} /first 0`]);
      });
    }

    it("refuses bare LF line endings after a good request on the same connection", async () => {
      const r = await rig(path);
      const s = await connectTcp(r.port);
      s.write(message(`GET ${r.target("/first")} HTTP/1.1`, [`Host: ${r.host}`]));
      expect(await readResponse(s)).toMatch(/^HTTP\/1\.1 200 /);
      const rest = readAll(s);
      s.write(bareLf(r));
      await expectRefused(r, path, (await rest).toString("latin1"), [`${r.host} /first 0`]);
    });

    it("refuses bare LF line endings as a connection's first request", async () => {
      const r = await rig(path);
      const s = await connectTcp(r.port);
      const all = readAll(s);
      s.write(bareLf(r));
      await expectRefused(r, path, (await all).toString("latin1"), []);
      expect(r.s.allowed.connections).toBe(0);
    });

    it("refuses a chunked body with a malformed chunk before anything is forwarded: no request upstream", async () => {
      const r = await rig(path);
      const s = await connectTcp(r.port);
      const all = readAll(s);
      // The head is well formed, but the body is read (up to a bound) before the request is
      // decided on its shape; the chunk size is not hex, so the framing stops there: nothing is forwarded.
      s.write(post(r, ["Transfer-Encoding: chunked"], `${chunk("abc")}0x${HIDDEN.length.toString(16)}\r\n${HIDDEN}\r\n0\r\n\r\n`));
      const text = (await all).toString("latin1");
      expect(text).not.toMatch(/^HTTP\/1\.1 200 /);
      expect(await r.s.sink.waitFor((e) => e.phase === "decide" && e.verdict === "block")).toMatchObject({ reasons: ["malformed-request"] });
      expect(served(r.s)).toEqual([]);
      expect(decides(r.s, "allow")).toHaveLength(0);
      expect(r.s.allowed.connections).toBe(0);
      expect(r.s.evil.connections).toBe(0);
    });
  });

  describe(`${path}: shapes both parsers read the same way are harmless`, () => {
    /** Sends one request that must be answered 200 by the declared upstream, which sees exactly `bodyBytes`. */
    async function harmless(r: Rig, bytes: string, bodyBytes: number): Promise<void> {
      const s = await connectTcp(r.port);
      const all = readAll(s);
      s.write(bytes);
      const text = (await all).toString("latin1");
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
      expect(served(r.s)).toEqual([`${r.host} /upload ${bodyBytes}`]);
      expect(decides(r.s, "allow")).toHaveLength(1);
      expect(decides(r.s, "block")).toHaveLength(0);
      expect(r.s.evil.connections).toBe(0);
    }

    const chunkedHidden = `${chunk(HIDDEN)}0\r\n\r\n`;
    it("a request hidden in a Content-Length body stays body", async () => {
      const r = await rig(path);
      await harmless(r, post(r, [`Content-Length: ${HIDDEN.length}`, "Connection: close"], HIDDEN), HIDDEN.length);
    });

    it("a request hidden in a chunked body stays body", async () => {
      const r = await rig(path);
      await harmless(r, post(r, ["Transfer-Encoding: chunked", "Connection: close"], chunkedHidden), HIDDEN.length);
    });

    it("a request hidden in a chunked body with a chunk extension stays body", async () => {
      const r = await rig(path);
      const body = `${Buffer.byteLength(HIDDEN).toString(16)};ext=1\r\n${HIDDEN}\r\n0\r\n\r\n`;
      await harmless(r, post(r, ["Transfer-Encoding: chunked", "Connection: close"], body), HIDDEN.length);
    });

    // Optional whitespace around a field value is not part of it (RFC 9110 5.5): both ends read chunked.
    for (const [name, lines] of [
      ["Transfer-Encoding with extra spaces before chunked", ["Transfer-Encoding:   chunked"]],
      ["Transfer-Encoding with a tab before chunked", ["Transfer-Encoding:\tchunked"]],
      ["Transfer-Encoding in mixed case", ["transfer-encoding: ChUnKeD"]],
    ] as const) {
      it(`${name}: framed as chunked on both sides`, async () => {
        const r = await rig(path);
        await harmless(r, post(r, [...lines, "Connection: close"], chunkedHidden), HIDDEN.length);
      });
    }

    it("a Content-Length shorter than the body leaves a second request, which is decided on its own and refused", async () => {
      const r = await rig(path);
      const s = await connectTcp(r.port);
      const all = readAll(s);
      // The "body" ends early; what follows is the next request on the connection, naming evil.test.
      const smuggled = path === "explicit" ? `GET http://evil.test:${r.s.port}/smuggled HTTP/1.1\r\nHost: evil.test:${r.s.port}\r\n\r\n` : `GET /smuggled HTTP/1.1\r\nHost: evil.test:${r.s.port}\r\n\r\n`;
      s.write(post(r, ["Content-Length: 3"], `abc${smuggled}`));
      const text = (await all).toString("latin1");
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(text).toMatch(/HTTP\/1\.1 403 /);
      expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(2);
      expect(await r.s.sink.waitFor((e) => e.phase === "decide" && e.verdict === "block")).toMatchObject({ name: "evil.test", url: expect.stringContaining("/smuggled") });
      expect(served(r.s)).toEqual([`${r.host} /upload 3`]);
      expect(r.s.evil.connections).toBe(0);
    });
  });
}

describe("transparent: a first flight the sniffer does not take for HTTP", () => {
  // llhttp skips empty lines before a request line, and serves any method token; the
  // first-flight sniffer knows nine methods and no leading CRLF. Bytes it does not take for
  // HTTP are spliced to the port's owner undecided, so they must never carry a request for
  // another host to the declared address.
  for (const [name, first] of [
    ["a leading CRLF before the request line", (port: number) => `\r\nGET /hidden HTTP/1.1\r\nHost: evil.test:${port}\r\n\r\n`],
    ["a method the sniffer does not know", (port: number) => `PROPFIND /hidden HTTP/1.1\r\nHost: evil.test:${port}\r\n\r\n`],
  ] as const) {
    it(`never carries a request for evil.test to the declared upstream: ${name}`, async () => {
      const r = await rig("transparent");
      const s = await connectTcp(r.port);
      const all = readAll(s);
      s.write(first(r.s.port));
      setTimeout(() => s.end(), 500).unref();
      await all;
      expect(served(r.s).filter((x) => x.startsWith("evil.test"))).toEqual([]);
      expect(r.s.evil.connections).toBe(0);
    });
  }
});
