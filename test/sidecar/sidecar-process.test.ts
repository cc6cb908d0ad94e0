import { Resolver } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import http from "node:http";
import tls from "node:tls";
import { Agent, ProxyAgent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDnsServer } from "../support/fake-dns.js";
import { SidecarProcess } from "../support/sidecar-process.js";
import { makeTestPki, type TestPki } from "../support/tls.js";
import { startHttpUpstream, startTlsUpstream, type HttpUpstream } from "../support/upstreams.js";

/**
 * The whole sidecar as a process, as the runtime runs it: our DNS answers declared names
 * with the sidecar's address, clients connect there, and the sidecar dials what it resolved.
 * Allowed upstreams live on 127.0.0.2; the undeclared ones on 127.0.0.3 must receive nothing.
 */
let pki: TestPki;
let dns: FakeDnsServer;
let allowedHttp: HttpUpstream;
let evilHttp: HttpUpstream;
let allowedTls: HttpUpstream;
let evilTls: HttpUpstream;
let sidecar: SidecarProcess;
let httpPort: number;
let tlsPort: number;

const policy = (hosts: string[]): string => `version: 1
name: loopback
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
${hosts.map((h) => `    - host: ${h}\n      ports: [${httpPort}, ${tlsPort}]`).join("\n")}
`;

/** A `lookup` that asks the sidecar's DNS, as the sandboxed server's resolver does. */
function sidecarLookup(): LookupFunction {
  const resolver = new Resolver();
  resolver.setServers([`127.0.0.1:${sidecar.dnsPort}`]);
  return (hostname, options, callback) => {
    resolver.resolve4(hostname).then(
      (ips) => answer(options, callback, ips[0]!),
      (err: NodeJS.ErrnoException) => callback(err, "", 4),
    );
  };
}

/** A `lookup` that ignores DNS and goes straight to the sidecar's address, as an attacker may. */
function fixedLookup(ip: string): LookupFunction {
  return (_hostname, options, callback) => answer(options, callback, ip);
}

function answer(options: { all?: boolean }, callback: Parameters<LookupFunction>[2], ip: string): void {
  if (options.all === true) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: ip, family: 4 }]);
  else callback(null, ip, 4);
}

function evilReceived(): number {
  return evilHttp.connections + evilTls.connections;
}

beforeAll(async () => {
  pki = await makeTestPki(["api.allowed.test", "evil.test", "rebind.allowed.test"]);
  allowedHttp = await startHttpUpstream({ host: "127.0.0.2", port: 0, label: "allowed" });
  httpPort = allowedHttp.port;
  evilHttp = await startHttpUpstream({ host: "127.0.0.3", port: httpPort, label: "evil" });
  allowedTls = await startTlsUpstream({ host: "127.0.0.2", port: 0, label: "allowed-tls", pki });
  tlsPort = allowedTls.port;
  evilTls = await startTlsUpstream({ host: "127.0.0.3", port: tlsPort, label: "evil-tls", pki });
  dns = await FakeDnsServer.start("127.0.0.4");
  dns.setA("api.allowed.test", ["127.0.0.2"]).setA("evil.test", ["127.0.0.3"]).setA("rebind.allowed.test", ["127.0.0.3"]);
  sidecar = await SidecarProcess.start(policy(["api.allowed.test", "rebind.allowed.test"]), {
    answerAddress: "127.0.0.1",
    listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0 },
    upstreamDns: [`127.0.0.4:${dns.port}`],
    trustedUpstreamRanges: ["127.0.0.2/32"],
  });
});

afterAll(async () => {
  await sidecar?.[Symbol.asyncDispose]();
  await Promise.all([allowedHttp, evilHttp, allowedTls, evilTls].map((u) => u?.[Symbol.asyncDispose]()));
  await dns?.close();
});

describe("sidecar process on loopback", () => {
  it("answers declared names with its own address and refuses undeclared ones without asking upstream", async () => {
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${sidecar.dnsPort}`]);
    expect(await resolver.resolve4("api.allowed.test")).toEqual(["127.0.0.1"]);
    await expect(resolver.resolve4("evil.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(dns.queriesFor("evil.test")).toEqual([]);
    const ev = await sidecar.waitForEvent((e) => e.type === "dns" && e.name === "evil.test");
    expect(ev).toMatchObject({ v: 1, server: "loopback", verdict: "block", reasons: ["undeclared-host"] });
  });

  it("carries plain HTTP on the transparent path for a client that ignores HTTP_PROXY", async () => {
    const dispatcher = new Agent({ connect: { lookup: sidecarLookup() } });
    const res = await fetch(`http://api.allowed.test:${httpPort}/hello`, { dispatcher });
    expect(await res.json()).toMatchObject({ upstream: "allowed", path: "/hello", host: `api.allowed.test:${httpPort}` });
    await dispatcher.close();
    const close = await sidecar.waitForEvent((e) => e.type === "egress" && e.phase === "close" && e.protocol === "http" && e.path === "transparent");
    // Per request, the bytes are the bodies': a GET sends none.
    expect(close.bytesUp).toBe(0);
    expect(close.bytesDown).toBeGreaterThan(0);
  });

  it("carries TLS on the transparent path, dialling the address the sidecar resolved", async () => {
    const dispatcher = new Agent({ connect: { lookup: sidecarLookup(), ca: pki.caCert } });
    const res = await fetch(`https://api.allowed.test:${tlsPort}/secure`, { dispatcher });
    expect(await res.json()).toMatchObject({ upstream: "allowed-tls", path: "/secure" });
    await dispatcher.close();
    const ev = await sidecar.waitForEvent((e) => e.type === "egress" && e.phase === "decide" && e.sni === "api.allowed.test");
    expect(ev).toMatchObject({ verdict: "allow", ip: "127.0.0.2", port: tlsPort, protocol: "tls" });
  });

  it("blocks an undeclared Host sent straight to the sidecar address; the undeclared upstream receives nothing", async () => {
    const dispatcher = new Agent({ connect: { lookup: fixedLookup("127.0.0.1") } });
    const res = await fetch(`http://evil.test:${httpPort}/exfil`, { dispatcher });
    expect(res.status).toBe(403);
    await dispatcher.close();
    const err = await new Promise<Error>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port: tlsPort, servername: "evil.test", ca: pki.caCert });
      s.once("error", resolve);
      s.once("secureConnect", () => resolve(new Error("connected")));
    });
    expect(err.message).not.toBe("connected");
    expect(evilReceived()).toBe(0);
  });

  it("enforces the same policy on the explicit proxy, for plain HTTP forwarding and CONNECT", async () => {
    // Plain HTTP through a proxy is an absolute-form request, as curl and HTTP_PROXY clients send it.
    const viaProxy = (url: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: sidecar.proxyPort, path: url, headers: { host: new URL(url).host } }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const ok = await viaProxy(`http://api.allowed.test:${httpPort}/via-proxy`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ upstream: "allowed", path: "/via-proxy" });
    expect((await viaProxy(`http://evil.test:${httpPort}/`)).status).toBe(403);

    const proxy = new ProxyAgent({ uri: `http://127.0.0.1:${sidecar.proxyPort}`, requestTls: { ca: pki.caCert } });
    const tlsOk = await fetch(`https://api.allowed.test:${tlsPort}/via-connect`, { dispatcher: proxy });
    expect(await tlsOk.json()).toMatchObject({ upstream: "allowed-tls", path: "/via-connect" });
    const refused = await fetch(`https://evil.test:${tlsPort}/`, { dispatcher: proxy }).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(Error);
    const ev = await sidecar.waitForEvent((e) => e.path === "explicit" && e.protocol === "connect" && e.name === "evil.test");
    expect(ev).toMatchObject({ verdict: "block", reasons: ["undeclared-host"] });
    await proxy.close();
    expect(evilReceived()).toBe(0);
  });

  it("refuses a declared name whose real address is private (rebinding) on both paths", async () => {
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${sidecar.dnsPort}`]);
    await expect(resolver.resolve4("rebind.allowed.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    const ev = await sidecar.waitForEvent((e) => e.type === "dns" && e.name === "rebind.allowed.test" && e.recordType === "A");
    expect(ev.verdict).toBe("block");
    expect(ev.reasons).toContain("resolution-loopback");
    const dispatcher = new Agent({ connect: { lookup: fixedLookup("127.0.0.1") } });
    const res = await fetch(`http://rebind.allowed.test:${httpPort}/`, { dispatcher });
    expect(res.status).toBe(403);
    await dispatcher.close();
    expect(evilReceived()).toBe(0);
  });

  it("writes every event as a versioned JSON line with the documented fields", () => {
    const egress = sidecar.egress();
    expect(egress.length).toBeGreaterThan(5);
    for (const e of egress) {
      expect(e.v).toBe(1);
      expect(Number.isNaN(Date.parse(e.ts))).toBe(false);
      expect(e.server).toBe("loopback");
      expect(["allow", "flag", "block", "would-block"]).toContain(e.verdict);
      expect(Array.isArray(e.reasons)).toBe(true);
      expect(typeof e.protocol).toBe("string");
    }
  });

  it("reloads the policy on SIGHUP without dropping a live connection", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: tlsPort, servername: "api.allowed.test", ca: pki.caCert });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    const ask = (path: string): Promise<string> =>
      new Promise((resolve) => {
        let body = "";
        const onData = (d: Buffer): void => {
          body += d.toString();
          if (body.includes("}")) {
            socket.off("data", onData);
            resolve(body);
          }
        };
        socket.on("data", onData);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: api.allowed.test\r\n\r\n`);
      });
    expect(await ask("/before")).toContain('"path":"/before"');

    // A broken policy is refused and the old one stays in force.
    await sidecar.rewritePolicy("version: 1\nname: loopback\negres: {}\n");
    sidecar.signal("SIGHUP");
    const failed = await sidecar.waitForLifecycle("reload-failed");
    expect(String(failed.detail?.["error"])).toContain("egres");

    await sidecar.rewritePolicy(policy(["other.allowed.test"]));
    sidecar.signal("SIGHUP");
    await sidecar.waitForLifecycle("reloaded");

    // The live connection was allowed when it began and keeps flowing...
    expect(await ask("/after")).toContain('"path":"/after"');
    socket.destroy();
    // ...while a new attempt is decided by the new policy.
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${sidecar.dnsPort}`]);
    await expect(resolver.resolve4("api.allowed.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    const dispatcher = new Agent({ connect: { lookup: fixedLookup("127.0.0.1") } });
    expect((await fetch(`http://api.allowed.test:${httpPort}/`, { dispatcher })).status).toBe(403);
    await dispatcher.close();
  });

  it("drains and exits 0 on SIGTERM", async () => {
    sidecar.signal("SIGTERM");
    expect(await sidecar.exited()).toBe(0);
    expect(sidecar.lifecycle("closed")).toHaveLength(1);
  });
});
