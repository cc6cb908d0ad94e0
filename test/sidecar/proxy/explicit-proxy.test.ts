import { afterEach, describe, expect, it } from "vitest";
import { fetch, ProxyAgent } from "undici";
import { connect as tlsConnect } from "node:tls";
import { Agent as HttpAgent } from "node:http";
import type { HttpUpstream } from "../../support/upstreams.js";
import { withExplicit } from "./fixtures.js";
import { ALLOWED_IP, EVIL_IP, connectTcp, openConnect, proxyRequest, rawRequest, readAll, tlsClient } from "./harness.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function explicit(options: Parameters<typeof withExplicit>[0]) {
  const e = await withExplicit(options);
  disposers.push(e.dispose);
  return e;
}

function proxyAgent(proxyUrl: string, ca: string): ProxyAgent {
  const agent = new ProxyAgent({ uri: proxyUrl, requestTls: { ca } });
  disposers.push(() => agent.close());
  return agent;
}

describe("ExplicitProxy: plain HTTP forwarding", () => {
  it("forwards an allowed request in origin form to the resolved address, Host preserved, over keep-alive", async () => {
    const e = await explicit({ kind: "http" });
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    disposers.push(async () => agent.destroy());
    const first = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/path/a?q=1`, { agent });
    expect(JSON.parse(first.body.toString())).toMatchObject({ upstream: "allowed", path: "/path/a?q=1", host: `api.allowed.test:${e.port}` });
    const second = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/bytes/100000`, { agent });
    expect(second.body.length).toBe(100_000);
    const posted = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/upload`, { agent, method: "POST", body: "x".repeat(5000) });
    expect(JSON.parse(posted.body.toString())).toMatchObject({ method: "POST", bodyBytes: 5000 });
    expect(e.allowed.connections).toBe(1); // both hops kept their connection alive

    const close = await e.sink.waitFor((x) => x.phase === "close" && x.url?.endsWith("/bytes/100000") === true);
    expect(close).toMatchObject({ path: "explicit", protocol: "http", method: "GET", verdict: "allow", ip: ALLOWED_IP, port: e.port, name: "api.allowed.test" });
    expect(close.bytesDown).toBe(100_000);
    const decide = e.sink.egress().find((x) => x.phase === "decide" && x.id === close.id);
    expect(decide).toMatchObject({ url: `http://api.allowed.test:${e.port}/bytes/100000`, host: `api.allowed.test:${e.port}` });
    expect((await e.sink.waitFor((x) => x.phase === "close" && x.method === "POST")).bytesUp).toBe(5000);
    expect(e.evil.connections).toBe(0);
  });

  it("also serves undici fetch of http:// URLs (undici 6 tunnels them with CONNECT)", async () => {
    const e = await explicit({ kind: "http" });
    const res = await fetch(`http://api.allowed.test:${e.port}/via-undici`, { dispatcher: proxyAgent(e.proxyUrl, e.pki.caCert) });
    expect(await res.json()).toMatchObject({ upstream: "allowed", path: "/via-undici" });
    // The plaintext inside the tunnel is decided per request, each holding to the CONNECT authority.
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ protocol: "http", verdict: "allow", connect: `api.allowed.test:${e.port}`, url: "/via-undici" });
  });

  it("does not forward hop-by-hop headers or proxy credentials", async () => {
    const e = await explicit({ kind: "http" });
    const s = await connectTcp(e.proxyPort);
    const response = readAll(s);
    s.write(
      `GET http://api.allowed.test:${e.port}/h HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\n` +
        `Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nConnection: close, X-Drop-Me\r\n` +
        `X-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Keep-Me: 2\r\n\r\n`,
    );
    expect((await response).toString()).toMatch(/^HTTP\/1\.1 200/);
    const seen = (e.allowed as HttpUpstream).requests[0]!.headers;
    expect(seen["x-keep-me"]).toBe("2");
    for (const h of ["proxy-authorization", "proxy-connection", "x-drop-me", "keep-alive", "te"]) expect(seen[h]).toBeUndefined();
  });

  it("answers an undeclared host with 403 and reasons; the undeclared upstream gets nothing", async () => {
    const e = await explicit({ kind: "http" });
    const res = await proxyRequest(e.proxyPort, `http://evil.test:${e.port}/exfil`);
    expect(res.status).toBe(403);
    expect(res.body.toString()).toContain("Hangar blocked the request to evil.test");
    expect(res.body.toString()).toContain("undeclared-host");
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ verdict: "block", name: "evil.test", method: "GET", path: "explicit" });
    expect(e.evil.connections).toBe(0);
  });

  it("refuses an IP-literal URL unless a CIDR rule declares it", async () => {
    const blocked = await explicit({ kind: "http" });
    const res = await proxyRequest(blocked.proxyPort, `http://${EVIL_IP}:${blocked.port}/`);
    expect(res.status).toBe(403);
    expect(res.headers["x-hangar-reasons"]).toBe("undeclared-ip");
    expect(blocked.evil.connections).toBe(0);

    const declared = await explicit({ kind: "http", egress: (port) => ({ allow: [{ cidr: `${EVIL_IP}/32`, ports: [port] }] }), trusted: [] });
    const ok = await proxyRequest(declared.proxyPort, `http://${EVIL_IP}:${declared.port}/lit`);
    expect(JSON.parse(ok.body.toString())).toMatchObject({ upstream: "evil", path: "/lit" });
    expect(await declared.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ verdict: "allow", reasons: ["declared-cidr"], ip: EVIL_IP });
  });

  it("refuses a rebinding answer (declared name resolving to loopback) with no trusted range", async () => {
    const e = await explicit({ kind: "http", trusted: [], table: { "api.allowed.test": [EVIL_IP] } });
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/`);
    expect(res.status).toBe(403);
    expect(res.headers["x-hangar-reasons"]).toContain("resolution-loopback");
    expect(e.evil.connections + e.allowed.connections).toBe(0);
  });

  it("answers an oversized request head with 431 and records it", async () => {
    const e = await explicit({ kind: "http" });
    const s = await connectTcp(e.proxyPort);
    const response = readAll(s);
    s.write(`GET http://api.allowed.test:${e.port}/ HTTP/1.1\r\nHost: api.allowed.test\r\nX-Pad: ${"a".repeat(20_000)}\r\n\r\n`);
    expect((await response).toString()).toMatch(/^HTTP\/1\.1 431 /);
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["header-too-large"], path: "explicit" });
    expect(e.allowed.connections).toBe(0);
  });

  it("capture mode answers 403 quarantine and records method, Host and path", async () => {
    const e = await explicit({ kind: "http", egress: () => ({ capture: true }) });
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/what/would?it=do`);
    expect(res.status).toBe(403);
    expect(res.body.toString()).toContain("Hangar quarantine");
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({
      reasons: ["capture", "undeclared-host"],
      method: "GET",
      host: `api.allowed.test:${e.port}`,
      url: `http://api.allowed.test:${e.port}/what/would?it`,
    });
    expect(e.allowed.connections + e.evil.connections).toBe(0);
  });
});

describe("ExplicitProxy: CONNECT tunnels", () => {
  it("tunnels HTTPS (undici ProxyAgent) to an allowed name and records SNI and byte counts", async () => {
    const e = await explicit({ kind: "tls" });
    const res = await fetch(`https://api.allowed.test:${e.port}/secure`, { dispatcher: proxyAgent(e.proxyUrl, e.pki.caCert) });
    expect(await res.json()).toMatchObject({ upstream: "allowed", path: "/secure" });
    const decide = await e.sink.waitFor((x) => x.phase === "decide");
    expect(decide).toMatchObject({
      path: "explicit",
      protocol: "connect",
      verdict: "allow",
      connect: `api.allowed.test:${e.port}`,
      sni: "api.allowed.test",
      ip: ALLOWED_IP,
    });
    await disposers.pop()!(); // close the agent, ending the tunnel
    const close = await e.sink.waitFor((x) => x.phase === "close");
    expect(close.bytesUp).toBeGreaterThan(200);
    expect(close.bytesDown).toBeGreaterThan(200);
    expect(e.evil.connections).toBe(0);
  });

  it("refuses CONNECT to an undeclared name or port before anything is dialled", async () => {
    const e = await explicit({ kind: "tls" });
    const evil = await openConnect(e.proxyPort, `evil.test:${e.port}`);
    expect(evil.status).toBe(403);
    const otherPort = e.port === 65535 ? 65534 : e.port + 1;
    const wrongPort = await openConnect(e.proxyPort, `api.allowed.test:${otherPort}`);
    expect(wrongPort.status).toBe(403);
    expect(wrongPort.head).toContain("undeclared-port");
    const v6 = await openConnect(e.proxyPort, `[::1]:${e.port}`);
    expect(v6.status).toBe(403);
    expect(v6.head).toContain("ipv6-disabled");
    expect(e.allowed.connections + e.evil.connections).toBe(0);
    expect(e.resolver.asked).toEqual([]);
  });

  it("blocks an SNI that differs from the CONNECT authority; nothing is dialled", async () => {
    const e = await explicit({ kind: "tls" });
    const tunnel = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(tunnel.status).toBe(200);
    await expect(tlsClient({ socket: tunnel.socket, servername: "evil.test", ca: e.pki.caCert })).rejects.toThrow();
    const decide = await e.sink.waitFor((x) => x.phase === "decide");
    expect(decide).toMatchObject({ verdict: "block", connect: `api.allowed.test:${e.port}`, sni: "evil.test" });
    expect(decide.reasons).toContain("sni-mismatch");
    expect(e.allowed.connections + e.evil.connections).toBe(0);
    expect(e.resolver.asked).toEqual([]);
  });

  it("accepts the same name in another case and with a trailing dot as no mismatch", async () => {
    const e = await explicit({ kind: "tls" });
    const tunnel = await openConnect(e.proxyPort, `API.Allowed.Test.:${e.port}`);
    const tls = await tlsClient({ socket: tunnel.socket, servername: "api.allowed.test", ca: e.pki.caCert });
    expect(await rawRequest(tls, "api.allowed.test")).toContain('"upstream":"allowed"');
  });

  it("refuses CONNECT to an IP literal unless a CIDR rule declares it", async () => {
    const blocked = await explicit({ kind: "tls" });
    const refused = await openConnect(blocked.proxyPort, `${EVIL_IP}:${blocked.port}`);
    expect(refused.status).toBe(403);
    expect(refused.head).toContain("undeclared-ip");
    expect(blocked.evil.connections).toBe(0);

    const declared = await explicit({ kind: "tls", egress: (port) => ({ allow: [{ cidr: "127.0.0.3/32", ports: [port] }] }), trusted: [] });
    const tunnel = await openConnect(declared.proxyPort, `${EVIL_IP}:${declared.port}`);
    expect(tunnel.status).toBe(200);
    // No SNI toward an IP; the test CA's certificate names hosts, so skip the name check only.
    const tls = tlsConnect({ socket: tunnel.socket, ca: declared.pki.caCert, checkServerIdentity: () => undefined });
    await new Promise<void>((resolve, reject) => tls.once("secureConnect", resolve).once("error", reject));
    expect(await rawRequest(tls, EVIL_IP)).toContain('"upstream":"evil"');
    expect(await declared.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ verdict: "allow", reasons: ["declared-cidr"], ip: EVIL_IP });
  });

  it("refuses a tunnel whose name rebinds to loopback with no trusted range, after the 200 but before any dial", async () => {
    const e = await explicit({ kind: "tls", trusted: [], table: { "api.allowed.test": [EVIL_IP] } });
    const tunnel = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(tunnel.status).toBe(200);
    await expect(tlsClient({ socket: tunnel.socket, servername: "api.allowed.test", ca: e.pki.caCert })).rejects.toThrow();
    const decide = await e.sink.waitFor((x) => x.phase === "decide");
    expect(decide.reasons).toContain("resolution-loopback");
    expect(e.evil.connections + e.allowed.connections).toBe(0);
  });

  it("OBSERVING never resolves an undeclared name: the tunnel is refused and recorded would-block", async () => {
    // Resolving it would carry the name to whoever serves its zone, as a DNS query would.
    const e = await explicit({ kind: "tls", mode: "observing" });
    await expect(fetch(`https://evil.test:${e.port}/`, { dispatcher: proxyAgent(e.proxyUrl, e.pki.caCert) })).rejects.toThrow();
    const decided = await e.sink.waitFor((x) => x.phase === "decide");
    expect(decided).toMatchObject({ verdict: "would-block", reasons: ["undeclared-host"] });
    expect(decided.ip).toBeUndefined();
    expect(e.resolver.asked).toEqual([]);
    expect(e.evil.connections).toBe(0);
  });

  it("capture mode opens the tunnel only to record the SNI, then closes it", async () => {
    const e = await explicit({ kind: "tls", egress: () => ({ capture: true }) });
    const tunnel = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(tunnel.status).toBe(200);
    await expect(tlsClient({ socket: tunnel.socket, servername: "api.allowed.test", ca: e.pki.caCert })).rejects.toThrow();
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ reasons: ["capture", "undeclared-host"], sni: "api.allowed.test" });
    expect(e.allowed.connections + e.evil.connections).toBe(0);
  });

  it("half-close through a tunnel: the client ends its side and still reads the reply", async () => {
    const e = await explicit({ kind: "tcp", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    const s = await connectTcp(e.proxyPort, { halfOpen: true });
    const all = readAll(s);
    s.write(`CONNECT db.allowed.test:${e.port} HTTP/1.1\r\nHost: db.allowed.test\r\n\r\n`);
    s.end(Buffer.from("\x00ping-after-connect"));
    const got = (await all).toString("latin1");
    expect(got).toBe("HTTP/1.1 200 Connection Established\r\n\r\n\x00ping-after-connect");
  });
});
