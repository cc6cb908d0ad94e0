import { afterEach, describe, expect, it } from "vitest";
import { fetch } from "undici";
import type { EgressEvent } from "../../../src/core/events.js";
import type { HttpUpstream } from "../../support/upstreams.js";
import { withTransparent } from "./fixtures.js";
import { ALLOWED_IP, EVIL_IP, closed, connectTcp, rawRequest, readAll, tlsClient, transparentAgent } from "./harness.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function transparent(options: Parameters<typeof withTransparent>[0]) {
  const t = await withTransparent(options);
  disposers.push(t.dispose);
  return t;
}

const decideOf = (events: EgressEvent[]) => events.filter((e) => e.phase === "decide");

describe("TransparentListener: allowed traffic", () => {
  it("splices an allowed TLS connection (SNI) to the address the sidecar resolved, with byte counts", async () => {
    const t = await transparent({ kind: "tls" });
    const tls = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
    const response = await rawRequest(tls, `api.allowed.test:${t.port}`, "/hello");
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain('"upstream":"allowed"');
    expect(response).toContain(`"host":"api.allowed.test:${t.port}"`);

    const close = await t.sink.waitFor((e) => e.phase === "close");
    const decide = t.sink.egress().find((e) => e.phase === "decide")!;
    expect(decide).toMatchObject({
      type: "egress",
      path: "transparent",
      server: "fixture",
      verdict: "allow",
      reasons: ["declared-host"],
      rule: "api.allowed.test",
      name: "api.allowed.test",
      sni: "api.allowed.test",
      port: t.port,
      ip: ALLOWED_IP,
      protocol: "tls",
    });
    expect(decide.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(close.id).toBe(decide.id);
    expect(close.bytesUp).toBeGreaterThan(200);
    expect(close.bytesDown).toBeGreaterThan(200);
    // The upstream may hang up before our last bytes (the client's close_notify) land.
    expect(t.allowed.bytesReceived).toBeGreaterThan(200);
    expect(t.allowed.bytesReceived).toBeLessThanOrEqual(close.bytesUp!);
    expect(close.durationMs).toBeGreaterThanOrEqual(0);
    expect(t.evil.connections).toBe(0);
  });

  it("serves HTTPS and plain HTTP fetch (undici) whose DNS points at the sidecar", async () => {
    const tls = await transparent({ kind: "tls" });
    const agent = transparentAgent(tls.pki.caCert);
    const res = await fetch(`https://api.allowed.test:${tls.port}/via/tls?q=1`, { dispatcher: agent });
    expect(await res.json()).toMatchObject({ upstream: "allowed", path: "/via/tls?q=1" });
    await agent.close();

    const http = await transparent({ kind: "http" });
    const agent2 = transparentAgent(http.pki.caCert);
    const big = await fetch(`http://api.allowed.test:${http.port}/bytes/300000`, { dispatcher: agent2 });
    expect((await big.arrayBuffer()).byteLength).toBe(300_000);
    const small = await fetch(`http://api.allowed.test:${http.port}/x`, { dispatcher: agent2 });
    expect(await small.json()).toMatchObject({ upstream: "allowed", host: `api.allowed.test:${http.port}`, method: "GET" });
    await agent2.close();
    const close = await http.sink.waitFor((e) => e.phase === "close" && e.url === "/bytes/300000");
    expect(close).toMatchObject({ protocol: "http", host: `api.allowed.test:${http.port}`, method: "GET", url: "/bytes/300000" });
    expect(close.bytesDown).toBe(300_000);
    expect(http.evil.connections).toBe(0);
  });
});

describe("TransparentListener: blocked traffic reaches nothing", () => {
  it("blocks an undeclared SNI; the undeclared upstream receives nothing", async () => {
    const t = await transparent({ kind: "tls" });
    await expect(tlsClient({ port: t.port, servername: "evil.test", ca: t.pki.caCert })).rejects.toThrow();
    const e = await t.sink.waitFor((x) => x.phase === "decide");
    expect(e).toMatchObject({ verdict: "block", reasons: ["undeclared-host"], name: "evil.test", sni: "evil.test", protocol: "tls" });
    expect(e.ip).toBeUndefined();
    expect(t.evil.connections).toBe(0);
    expect(t.evil.bytesReceived).toBe(0);
    expect(t.resolver.asked).toEqual([]);
  });

  it("answers an undeclared Host with a 403 naming the reasons", async () => {
    const t = await transparent({ kind: "http" });
    const agent = transparentAgent(t.pki.caCert);
    const res = await fetch(`http://evil.test:${t.port}/steal`, { dispatcher: agent });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/Hangar blocked the request to evil\.test:\d+: undeclared-host/);
    expect(res.headers.get("x-hangar-reasons")).toBe("undeclared-host");
    await agent.close();
    expect(decideOf(t.sink.egress())[0]).toMatchObject({ verdict: "block", method: "GET", url: "/steal", host: `evil.test:${t.port}` });
    expect(t.evil.connections).toBe(0);
  });

  it("blocks a declared name on a port its rule does not list", async () => {
    const t = await transparent({
      kind: "tls",
      egress: (port) => ({ allow: [{ host: "api.allowed.test", ports: [port === 65535 ? 65534 : port + 1] }, { host: "other.allowed.test", ports: [port] }] }),
    });
    await expect(tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert })).rejects.toThrow();
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["undeclared-port"], name: "api.allowed.test" });
    expect(t.allowed.connections + t.evil.connections).toBe(0);
  });

  it("refuses a declared name whose real resolution is loopback (rebinding) unless a trusted range vouches for it", async () => {
    const t = await transparent({ kind: "tls", trusted: [], table: { "api.allowed.test": [EVIL_IP] } });
    await expect(tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert })).rejects.toThrow();
    const e = await t.sink.waitFor((x) => x.phase === "decide");
    expect(e).toMatchObject({ verdict: "block", name: "api.allowed.test" });
    expect(e.reasons).toContain("resolution-loopback");
    expect(t.resolver.asked).toEqual(["api.allowed.test"]);
    expect(t.evil.connections).toBe(0);
    expect(t.allowed.connections).toBe(0);

    // The same name, resolved to loopback, is dialled once 127.0.0.0/8 is a trusted upstream range.
    const trusted = await transparent({ kind: "tls", trusted: ["127.0.0.0/8"] });
    const tls = await tlsClient({ port: trusted.port, servername: "api.allowed.test", ca: trusted.pki.caCert });
    expect(await rawRequest(tls, "api.allowed.test")).toContain('"upstream":"allowed"');
  });

  it("routes a nameless protocol by the port's single owner, and refuses an ambiguous port", async () => {
    const owned = await transparent({ kind: "tcp", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    const s = await connectTcp(owned.port);
    const reply = readAll(s);
    s.end(Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]));
    expect([...(await reply)]).toEqual([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]);
    expect(decideOf(owned.sink.egress())[0]).toMatchObject({ verdict: "allow", protocol: "tcp", name: "db.allowed.test", ip: ALLOWED_IP });

    const ambiguous = await transparent({
      kind: "tcp",
      egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }, { host: "api.allowed.test", ports: [port] }] }),
    });
    const a = await connectTcp(ambiguous.port);
    const nothing = readAll(a);
    a.write(Buffer.from([0, 0, 0, 8]));
    expect((await nothing).length).toBe(0);
    expect(await ambiguous.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["ambiguous-port"], protocol: "tcp" });
    expect(ambiguous.allowed.connections + ambiguous.evil.connections).toBe(0);
  });

  it("treats silence as a server-first protocol and dials the port owner after the peek timeout", async () => {
    const t = await transparent({ kind: "tcp", greeting: "220 hello\r\n", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    const s = await connectTcp(t.port);
    const greeting = await new Promise<string>((resolve) => s.once("data", (d: Buffer) => resolve(d.toString())));
    expect(greeting).toBe("220 hello\r\n");
    s.destroy();
    expect(t.allowed.connections).toBe(1);
  });
});

describe("TransparentListener: modes", () => {
  it("OBSERVING never resolves an undeclared name: refused, recorded would-block", async () => {
    // Resolving it would carry the name to whoever serves its zone, as a DNS query would.
    const t = await transparent({ kind: "tls", mode: "observing" });
    await expect(tlsClient({ port: t.port, servername: "evil.test", ca: t.pki.caCert })).rejects.toThrow();
    const decided = await t.sink.waitFor((e) => e.phase === "decide");
    expect(decided).toMatchObject({ verdict: "would-block", reasons: ["undeclared-host"] });
    expect(decided.ip).toBeUndefined();
    expect(t.resolver.asked).toEqual([]);
    expect(t.evil.connections).toBe(0);
  });

  it("OBSERVING lets a declared name's drift flow, recorded would-block", async () => {
    const t = await transparent({ kind: "tls", mode: "observing" });
    t.ctx.setDecision({ ...t.ctx.decisionContext(), baseline: { destinations: new Set(), names: new Set(), dnsNames: new Set(), rateTolerance: 2 } });
    const tls = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
    expect(await rawRequest(tls, "api.allowed.test")).toContain('"upstream":"allowed"');
    expect(decideOf(t.sink.egress())[0]).toMatchObject({ verdict: "would-block", reasons: ["drift-new-destination"], ip: ALLOWED_IP });
  });

  it("capture mode records SNI, Host, method and path, and nothing leaves", async () => {
    const t = await transparent({ kind: "http", egress: (port) => ({ capture: { ports: [port] } }) });
    const s = await connectTcp(t.port);
    const response = await rawRequest(s, "api.allowed.test", "/secret/path?token=x");
    expect(response).toMatch(/^HTTP\/1\.1 403/);
    expect(response).toContain("Hangar quarantine (capture mode)");
    expect(decideOf(t.sink.egress())[0]).toMatchObject({
      verdict: "block",
      reasons: ["capture", "undeclared-host"],
      host: "api.allowed.test",
      method: "GET",
      url: "/secret/path?token",
      protocol: "http",
    });

    const tlsSide = await transparent({ kind: "tls", egress: (port) => ({ capture: { ports: [port] } }) });
    await expect(tlsClient({ port: tlsSide.port, servername: "api.allowed.test", ca: tlsSide.pki.caCert })).rejects.toThrow();
    expect(await tlsSide.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ reasons: ["capture", "undeclared-host"], sni: "api.allowed.test" });
    for (const u of [t.allowed, t.evil, tlsSide.allowed, tlsSide.evil]) expect(u.connections).toBe(0);
    expect(t.resolver.asked).toEqual([]);
  });
});

describe("TransparentListener: baseline rate", () => {
  it("feeds connections per minute to the decision, so a burst above the frozen baseline is drift", async () => {
    const t = await transparent({ kind: "tls" });
    const key = `api.allowed.test:${t.port}`;
    t.ctx.setDecision({
      ...t.ctx.decisionContext(),
      baseline: { destinations: new Set([key]), names: new Set(["api.allowed.test"]), dnsNames: new Set(), maxConnectionsPerMinute: new Map([[key, 1]]), rateTolerance: 2 },
    });
    for (let i = 0; i < 2; i++) {
      const tls = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
      await rawRequest(tls, "api.allowed.test");
    }
    await expect(tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert })).rejects.toThrow();
    expect(decideOf(t.sink.egress()).map((e) => e.verdict)).toEqual(["allow", "allow", "block"]);
    expect(decideOf(t.sink.egress())[2]!.reasons).toEqual(["drift-rate"]);
  });
});

describe("TransparentListener: half-close", () => {
  it("a client that ends its write side still reads the whole reply", async () => {
    const t = await transparent({ kind: "tcp", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    const s = await connectTcp(t.port, { halfOpen: true });
    const payload = Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(200_000, 7)]);
    const reply = readAll(s);
    s.end(payload);
    const got = await reply;
    expect(got.equals(payload)).toBe(true);
    await closed(s);
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close).toMatchObject({ bytesUp: payload.length, bytesDown: payload.length });
    expect((t.allowed as HttpUpstream | typeof t.allowed).connections).toBe(1);
  });
});

describe("TransparentListener: names as sent", () => {
  // A base64 label is readable only in its original case: events keep it beside the normalised name.
  it("keeps the SNI and the Host in the case the client sent, beside the lower-cased name", async () => {
    const label = "QmFzZTY0IGRhdGE";
    const tls = await transparent({ kind: "tls" });
    await expect(tlsClient({ port: tls.port, servername: `${label}.Evil.Test`, ca: tls.pki.caCert })).rejects.toThrow();
    const refused = await tls.sink.waitFor((e) => e.phase === "decide");
    expect(refused).toMatchObject({ verdict: "block", name: `${label.toLowerCase()}.evil.test`, sni: `${label}.Evil.Test` });

    const http = await transparent({ kind: "http" });
    const socket = await connectTcp(http.port);
    socket.write(`GET / HTTP/1.1\r\nHost: ${label}.Evil.Test\r\nConnection: close\r\n\r\n`);
    await readAll(socket);
    const decided = await http.sink.waitFor((e) => e.phase === "decide");
    expect(decided).toMatchObject({ verdict: "block", name: `${label.toLowerCase()}.evil.test`, host: `${label}.Evil.Test` });
    expect(tls.evil.connections + http.evil.connections).toBe(0);
  });
});
