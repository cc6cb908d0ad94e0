import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect as tlsConnect, rootCertificates, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import type { PolicyInput } from "../../../src/core/policy/policy-schema.js";
import { createSandboxCa, LeafMinter, type CaMaterial } from "../../../src/sidecar/proxy/tls/sandbox-ca.js";
import type { TlsInspection } from "../../../src/sidecar/proxy/tls/tls-terminator.js";
import { testPki, withExplicit, withTransparent, type Scenario } from "./fixtures.js";
import { connectTcp, openConnect, readAll, SIDECAR_IP } from "./harness.js";

/**
 * `inspect: true`: the sidecar terminates TLS with the sandbox CA, decides every request
 * (Host must be the SNI; `http` routes hold), and re-originates TLS to the upstream with full
 * verification against the system roots plus the operator's extra CA (here: the test PKI,
 * which stands for `runtime.upstreamCaFile`).
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

let ca: CaMaterial;
beforeAll(async () => {
  ca = await createSandboxCa({ name: "test", now: Date.now() });
});

async function inspection(trustUpstreamCa = true): Promise<TlsInspection> {
  const pki = await testPki();
  return { minter: new LeafMinter(ca), upstreamCa: trustUpstreamCa ? [...rootCertificates, pki.caCert] : [...rootCertificates] };
}

const inspected = (http?: { method: string; path: string }[]) => (port: number): PolicyInput["egress"] => ({
  allow: [{ host: "api.allowed.test", ports: [port], inspect: true, ...(http ? { http } : {}) }],
});

async function transparent(options: { http?: { method: string; path: string }[]; trustUpstreamCa?: boolean } = {}) {
  const t = await withTransparent({ kind: "tls", egress: inspected(options.http), inspection: await inspection(options.trustUpstreamCa ?? true) });
  disposers.push(t.dispose);
  return t;
}

/** A client that trusts the sandbox CA, as the server inside the sandbox does. */
function client(options: { port?: number; socket?: Socket; servername?: string; ca?: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      ...(options.socket !== undefined ? { socket: options.socket } : { host: SIDECAR_IP, port: options.port! }),
      servername: options.servername ?? "api.allowed.test",
      ca: options.ca ?? ca.certPem,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends raw requests, half-closes, and returns everything answered. */
async function exchange(s: TLSSocket, text: string): Promise<string> {
  const all = readAll(s as unknown as Socket);
  s.write(text);
  return (await all).toString();
}

const req = (method: string, path: string, host: string, extra = ""): string => `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
const served = (s: Scenario): string[] => (s.allowed as unknown as { requests: { method: string; host?: string; path: string }[] }).requests.map((r) => `${r.method} ${r.host ?? ""} ${r.path}`);

describe("inspect: TLS terminated by the sidecar, every request decided", () => {
  it("serves a client that trusts the sandbox CA, over verified TLS upstream, and offers only http/1.1", async () => {
    const t = await transparent();
    const s = await client({ port: t.port });
    expect(s.alpnProtocol).toBe("http/1.1");
    expect(s.getPeerCertificate().issuer.CN).toMatch(/Hangar sandbox CA/);
    const text = await exchange(s, req("GET", "/hello?x=1", "api.allowed.test", "Connection: close\r\n"));
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain('"upstream":"allowed"');
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "allow", sni: "api.allowed.test", method: "GET", url: "/hello?x", protocol: "http", path: "transparent" });
    expect(served(t)).toEqual(["GET api.allowed.test /hello?x=1"]);
  });

  it("refuses a Host that is not the SNI (domain fronting), and nothing after it", async () => {
    const t = await transparent();
    const s = await client({ port: t.port });
    const text = await exchange(s, req("GET", "/one", "api.allowed.test") + req("GET", "/fronted", "evil.test") + req("GET", "/three", "api.allowed.test"));
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 403"]);
    expect(await t.sink.waitFor((e) => e.verdict === "block")).toMatchObject({ url: "/fronted", reasons: expect.arrayContaining(["host-mismatch"]) });
    expect(served(t)).toEqual(["GET api.allowed.test /one"]);
    expect(t.evil.connections).toBe(0);
  });

  it("holds the rule's http routes: method exact, path glob without the query", async () => {
    const t = await transparent({ http: [{ method: "POST", path: "/email" }, { method: "GET", path: "/messages/*" }] });
    const ok = await client({ port: t.port });
    const body = '{"To":"a@b.test"}';
    expect(await exchange(ok, req("POST", "/email?mode=x", "api.allowed.test", `Content-Length: ${body.length}\r\nConnection: close\r\n`) + body)).toMatch(/^HTTP\/1\.1 200/);
    for (const [method, path] of [["GET", "/email"], ["GET", "/admin"], ["GET", "/messages/1/raw"], ["GET", "/messages/../admin"], ["GET", "/messages/%2e%2e"]] as const) {
      const s = await client({ port: t.port });
      const text = await exchange(s, req(method, path, "api.allowed.test", "Connection: close\r\n"));
      expect(text, `${method} ${path}`).toMatch(/^HTTP\/1\.1 403/);
      expect(text).toMatch(/undeclared-route/);
    }
    expect(served(t)).toEqual(["POST api.allowed.test /email?mode=x"]);
    expect(await t.sink.waitFor((e) => e.verdict === "block" && e.url === "/admin")).toMatchObject({ reasons: ["undeclared-route"], rule: "api.allowed.test" });
  });

  it("refuses the request when the upstream certificate does not verify, with an event that says so", async () => {
    const t = await transparent({ trustUpstreamCa: false });
    const s = await client({ port: t.port });
    const text = await exchange(s, req("GET", "/x", "api.allowed.test", "Connection: close\r\n"));
    expect(text).toMatch(/^HTTP\/1\.1 502/);
    expect(text).toMatch(/certificate did not verify/);
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close).toMatchObject({ verdict: "block", reasons: ["upstream-certificate"], bytesDown: 0 });
    expect(served(t)).toEqual([]);
  });

  it("fails closed when the client pins another CA, with an event that says so", async () => {
    const t = await transparent();
    const pki = await testPki();
    await expect(client({ port: t.port, ca: pki.caCert })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["client-rejected-ca"], sni: "api.allowed.test" });
    expect(t.allowed.connections + t.evil.connections).toBe(0);
  });

  it("refuses TLS it does not inspect on a rule that lists requests", async () => {
    const t = await withTransparent({ kind: "tls", egress: (port) => ({ allow: [{ host: "api.allowed.test", ports: [port], http: [{ method: "GET", path: "/**" }] }] }) });
    disposers.push(t.dispose);
    const s = await connectTcp(t.port);
    const tls = tlsConnect({ socket: s, servername: "api.allowed.test", ca: (await testPki()).caCert });
    await new Promise<void>((resolve) => {
      tls.once("error", () => resolve());
      tls.once("close", () => resolve());
    });
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["requests-not-visible"] });
    expect(t.allowed.connections).toBe(0);
  });
});

describe("inspect inside CONNECT", () => {
  it("terminates TLS in the tunnel and decides each request against the authority", async () => {
    const e = await withExplicit({ kind: "tls", egress: inspected(), inspection: await inspection() });
    disposers.push(e.dispose);
    const { status, socket } = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(status).toBe(200);
    const s = await client({ socket });
    const text = await exchange(s, req("GET", "/in-tunnel", `api.allowed.test:${e.port}`) + req("GET", "/fronted", "evil.test"));
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 403"]);
    expect(await e.sink.waitFor((x) => x.verdict === "allow" && x.phase === "decide")).toMatchObject({ connect: `api.allowed.test:${e.port}`, sni: "api.allowed.test", url: "/in-tunnel", path: "explicit" });
    expect(served(e)).toEqual([`GET api.allowed.test:${e.port} /in-tunnel`]);
    expect(e.evil.connections).toBe(0);
  });
});

describe("capture with a sandbox CA: TLS is terminated so requests are recorded, and nothing leaves", () => {
  it("records method, path template and body field names of a request inside TLS, answers 403, dials nothing", async () => {
    const t = await withTransparent({ kind: "tls", egress: (port) => ({ capture: { ports: [port] } }), inspection: await inspection() });
    disposers.push(t.dispose);
    const s = await client({ port: t.port });
    const body = '{"To":"a@b.test","Bcc":"c@d.test"}';
    const text = await exchange(s, req("POST", "/email/42?x=1", "api.allowed.test", `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`) + body);
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(text).toContain("Hangar quarantine (capture mode)");
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({
      verdict: "block",
      reasons: expect.arrayContaining(["capture"]),
      sni: "api.allowed.test",
      method: "POST",
      url: "/email/42?x",
      pathTemplate: "/email/{n}",
      queryKeys: ["x"],
      bodyFields: ["Bcc", "To"],
    });
    expect(JSON.stringify(t.sink.egress())).not.toContain("@");
    expect(t.allowed.connections + t.evil.connections).toBe(0);
  });
});
