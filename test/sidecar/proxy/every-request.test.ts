import { afterEach, describe, expect, it } from "vitest";
import { connect as tlsConnect } from "node:tls";
import { withExplicit, withTransparent, type Scenario } from "./fixtures.js";
import { captureClientHello, closed, connectTcp, openConnect, readAll, readResponse } from "./harness.js";

/**
 * Every HTTP request is decided, not only a connection's first: a keep-alive or pipelined
 * request naming an undeclared virtual host behind a declared address, an absolute-form URI
 * that disagrees with Host, plaintext or SNI-less TLS inside a CONNECT tunnel. The allowed
 * upstream stands for "the declared address": it must never see a request for evil.test,
 * and nothing after a refused request may reach it.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function transparent() {
  const t = await withTransparent({ kind: "http" });
  disposers.push(t.dispose);
  return t;
}

async function explicit(kind: "http" | "tls" = "http") {
  const e = await withExplicit({ kind });
  disposers.push(e.dispose);
  return e;
}

const get = (path: string, host: string, target = path): string => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

/** What the declared address served: never a request for the undeclared host. */
function servedHosts(s: Scenario): string[] {
  return (s.allowed as unknown as { requests: { host?: string; path: string }[] }).requests.map((r) => `${r.host ?? ""} ${r.path}`);
}

describe("transparent HTTP: each request on a connection is decided", () => {
  it("refuses a keep-alive Host switch to an undeclared host, with a 403, an event, and the connection closed", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    s.write(get("/first", `api.allowed.test:${t.port}`));
    expect(await readResponse(s)).toMatch(/^HTTP\/1\.1 200/);
    const rest = readAll(s);
    s.write(get("/switch", `evil.test:${t.port}`));
    const refused = (await rest).toString();
    expect(refused).toMatch(/^HTTP\/1\.1 403/);
    expect(refused).toMatch(/X-Hangar-Reasons: undeclared-host/i);
    await closed(s);
    expect(await t.sink.waitFor((e) => e.phase === "decide" && e.verdict === "block")).toMatchObject({ name: "evil.test", url: "/switch", path: "transparent", protocol: "http" });
    expect(servedHosts(t)).toEqual([`api.allowed.test:${t.port} /first`]);
    expect(t.evil.connections).toBe(0);
  });

  it("forwards nothing after a refused pipelined request", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    const all = readAll(s);
    s.write(get("/one", `api.allowed.test:${t.port}`) + get("/two", `evil.test:${t.port}`) + get("/three", `api.allowed.test:${t.port}`));
    const text = (await all).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain("HTTP/1.1 403");
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(2);
    expect(servedHosts(t)).toEqual([`api.allowed.test:${t.port} /one`]);
    expect(t.evil.connections).toBe(0);
  });

  it("refuses an absolute-form URI that names another host than Host", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    const all = readAll(s);
    s.write(get("/x", `api.allowed.test:${t.port}`, `http://evil.test:${t.port}/x`));
    const text = (await all).toString();
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(text).toMatch(/X-Hangar-Reasons: .*host-mismatch/i);
    expect(await t.sink.waitFor((e) => e.verdict === "block")).toMatchObject({ reasons: expect.arrayContaining(["host-mismatch"]) });
    expect(servedHosts(t)).toEqual([]);
    expect(t.evil.connections).toBe(0);
  });

  it("forwards an absolute-form URI that agrees with Host, in origin form", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    s.write(get("/abs", `API.allowed.test:${t.port}`, `http://api.allowed.test:${t.port}/abs?q=1`));
    expect(await readResponse(s)).toMatch(/^HTTP\/1\.1 200/);
    s.destroy();
    expect(servedHosts(t)).toEqual([`API.allowed.test:${t.port} /abs?q=1`]);
  });

  it("refuses two Host headers", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    const all = readAll(s);
    s.write(`GET / HTTP/1.1\r\nHost: api.allowed.test:${t.port}\r\nHost: evil.test\r\n\r\n`);
    expect((await all).toString()).toMatch(/^HTTP\/1\.1 400/);
    expect(servedHosts(t)).toEqual([]);
  });
});

describe("explicit proxy: each request is decided", () => {
  it("forwards nothing after a refused pipelined absolute-form request", async () => {
    const e = await explicit();
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    const at = (host: string, path: string): string => get(path, `${host}:${e.port}`, `http://${host}:${e.port}${path}`);
    s.write(at("api.allowed.test", "/one") + at("evil.test", "/two") + at("api.allowed.test", "/three"));
    const text = (await all).toString();
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(2);
    expect(text).toContain("HTTP/1.1 403");
    expect(servedHosts(e)).toEqual([`api.allowed.test:${e.port} /one`]);
    expect(e.evil.connections).toBe(0);
  });
});

describe("inside CONNECT: plaintext is decided per request, TLS must name the authority", () => {
  it("refuses plaintext HTTP whose Host is not the CONNECT authority", async () => {
    const e = await explicit();
    const { status, socket } = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(status).toBe(200);
    socket.resume();
    socket.write(get("/ok", `api.allowed.test:${e.port}`));
    expect(await readResponse(socket)).toMatch(/^HTTP\/1\.1 200/);
    const rest = readAll(socket);
    socket.write(get("/fronted", `evil.test:${e.port}`));
    const text = (await rest).toString();
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(text).toMatch(/host-mismatch/);
    const refused = await e.sink.waitFor((x) => x.verdict === "block");
    expect(refused).toMatchObject({ connect: `api.allowed.test:${e.port}`, url: "/fronted", protocol: "http", reasons: expect.arrayContaining(["host-mismatch"]) });
    expect(servedHosts(e)).toEqual([`api.allowed.test:${e.port} /ok`]);
    expect(e.evil.connections).toBe(0);
  });

  it("refuses TLS without SNI when the authority is a name", async () => {
    const e = await explicit("tls");
    const { status, socket } = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    expect(status).toBe(200);
    const tls = tlsConnect({ socket, servername: "", ca: e.pki.caCert, checkServerIdentity: () => undefined });
    const outcome = await new Promise<string>((resolve) => {
      tls.once("secureConnect", () => resolve("connected"));
      tls.once("error", (err) => resolve(`error: ${err.message}`));
      tls.once("close", () => resolve("closed"));
    });
    expect(outcome).not.toBe("connected");
    expect(await e.sink.waitFor((x) => x.verdict === "block")).toMatchObject({ protocol: "connect", reasons: ["sni-missing"], name: "api.allowed.test" });
    expect(e.allowed.connections).toBe(0);
    expect(e.evil.connections).toBe(0);
  });
});

describe("names that used to throw inside the IP parser are refusals with events", () => {
  it("records a transparent TLS connection whose SNI is ':@a/'", async () => {
    const t = await withTransparent({ kind: "tls" });
    disposers.push(t.dispose);
    const hello = await captureClientHello({ servername: ":@a/" });
    const s = await connectTcp(t.port);
    const got = readAll(s);
    s.write(hello);
    await got;
    expect(await t.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ verdict: "block", protocol: "tls", sni: ":@a/", reasons: expect.arrayContaining(["invalid-name"]) });
    expect(t.allowed.connections + t.evil.connections).toBe(0);
  });

  it("records CONNECT [:@a/]:443 as a malformed request", async () => {
    const e = await explicit();
    const { status } = await openConnect(e.proxyPort, "[:@a/]:443");
    expect(status).toBe(400);
    expect(await e.sink.waitFor((x) => x.phase === "decide")).toMatchObject({ verdict: "block", reasons: ["malformed-request"], connect: "[:@a/]:443" });
  });
});

describe("events carry query keys, never their values", () => {
  it("keeps the path and the key names of a request's query", async () => {
    const t = await transparent();
    const s = await connectTcp(t.port);
    s.write(get("/send?token=s3cr3t&to=a%40b.test&flag#frag", `api.allowed.test:${t.port}`));
    expect(await readResponse(s)).toMatch(/^HTTP\/1\.1 200/);
    s.destroy();
    const decide = await t.sink.waitFor((e) => e.phase === "decide");
    expect(decide.url).toBe("/send?token&to&flag");
    expect(JSON.stringify(t.sink.egress())).not.toContain("s3cr3t");
  });
});
