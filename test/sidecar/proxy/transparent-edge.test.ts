import { afterEach, describe, expect, it } from "vitest";
import { connect as tlsConnect } from "node:tls";
import { withTransparent, TrickleFirstFlight } from "./fixtures.js";
import { captureClientHello, closed, connectTcp, rawRequest, readAll, splitIntoRecords, tlsClient } from "./harness.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function transparent(options: Parameters<typeof withTransparent>[0]) {
  const t = await withTransparent(options);
  disposers.push(t.dispose);
  return t;
}

/** A real TLS handshake and request whose ClientHello goes out one byte per segment, re-framed by `rewrite`. */
async function trickledRequest(port: number, ca: string, rewrite?: (b: Buffer) => Buffer): Promise<string> {
  const inner = await connectTcp(port);
  const wrapped = new TrickleFirstFlight(inner, rewrite);
  const tls = tlsConnect({ socket: wrapped as never, servername: "api.allowed.test", ca });
  await new Promise<void>((resolve, reject) => {
    tls.once("secureConnect", () => resolve());
    tls.once("error", reject);
  });
  const body = readAll(tls as never);
  tls.write("GET /trickle HTTP/1.1\r\nHost: api.allowed.test\r\nConnection: close\r\n\r\n");
  return (await body).toString();
}

describe("TransparentListener: ClientHello reassembly", () => {
  it("works when the ClientHello arrives one byte per TCP segment", async () => {
    const t = await transparent({ kind: "tls", peekTimeoutMs: 5000 });
    expect(await trickledRequest(t.port, t.pki.caCert)).toContain('"path":"/trickle"');
    expect((await t.sink.waitFor((e) => e.phase === "decide")).verdict).toBe("allow");
  });

  it("works when the ClientHello is split across two TLS records (and sent a byte at a time)", async () => {
    const t = await transparent({ kind: "tls", peekTimeoutMs: 5000 });
    const twoRecords = (flight: Buffer): Buffer => (flight.length === 5 + flight.readUInt16BE(3) ? splitIntoRecords(flight, [60]) : flight);
    expect(await trickledRequest(t.port, t.pki.caCert, twoRecords)).toContain('"upstream":"allowed"');
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "allow", sni: "api.allowed.test" });
  });
});

describe("TransparentListener: bad input is a clean close and an event, never a crash", () => {
  it("closes on a malformed ClientHello, records it, and serves the next connection", async () => {
    const t = await transparent({ kind: "tls" });
    const hello = await captureClientHello({ servername: "api.allowed.test" });
    const bad = Buffer.from(hello);
    bad[5] = 2; // handshake type ServerHello: not what a client may open with
    const s = await connectTcp(t.port);
    const got = readAll(s);
    s.write(bad);
    expect((await got).length).toBe(0);
    await closed(s);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["malformed-client-hello"], protocol: "tls" });
    expect(t.allowed.connections + t.evil.connections).toBe(0);

    const tls = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
    expect(await rawRequest(tls, "api.allowed.test")).toContain('"upstream":"allowed"');
  });

  it("closes a truncated ClientHello (client hangs up mid-way) with malformed-client-hello", async () => {
    const t = await transparent({ kind: "tls" });
    const hello = await captureClientHello({ servername: "api.allowed.test" });
    const s = await connectTcp(t.port);
    s.end(hello.subarray(0, 40));
    await closed(s);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ reasons: ["malformed-client-hello"] });
  });

  it("times out a ClientHello that starts and never finishes (peek-timeout)", async () => {
    const t = await transparent({ kind: "tls", peekTimeoutMs: 200 });
    const hello = await captureClientHello({ servername: "api.allowed.test" });
    const s = await connectTcp(t.port);
    s.write(hello.subarray(0, 40));
    await closed(s);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["peek-timeout"], protocol: "tls" });
    expect(t.allowed.connections).toBe(0);
  });

  it("answers an oversized HTTP head with 431 and closes", async () => {
    const t = await transparent({ kind: "http" });
    const s = await connectTcp(t.port);
    const got = readAll(s);
    s.write(`GET / HTTP/1.1\r\nHost: api.allowed.test\r\nX-Pad: ${"a".repeat(20_000)}\r\n\r\n`);
    expect((await got).toString()).toMatch(/^HTTP\/1\.1 431 /);
    await closed(s);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["header-too-large"], protocol: "http" });
    expect(t.allowed.connections).toBe(0);
  });

  it("answers a smuggling-shaped head (two Host headers) with 400", async () => {
    const t = await transparent({ kind: "http" });
    const s = await connectTcp(t.port);
    const got = readAll(s);
    s.write(`GET / HTTP/1.1\r\nHost: api.allowed.test\r\nHost: evil.test\r\n\r\n`);
    expect((await got).toString()).toMatch(/^HTTP\/1\.1 400 /);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ reasons: ["malformed-request"] });
    expect(t.allowed.connections + t.evil.connections).toBe(0);
  });

  it("a client that connects and leaves without a word is no attempt and costs nothing", async () => {
    const t = await transparent({ kind: "tls" });
    const s = await connectTcp(t.port);
    s.end();
    await closed(s);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.sink.egress()).toEqual([]);
    expect(t.listener.connections).toBe(0);
  });
});
