import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect as tlsConnect, rootCertificates, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { compileSecretWatch, SENTINEL_PREFIX, type SecretMaterial } from "../../../src/core/secrets/secret-watch.js";
import type { Mode } from "../../../src/core/policy/policy-schema.js";
import { createSandboxCa, LeafMinter, type CaMaterial } from "../../../src/sidecar/proxy/tls/sandbox-ca.js";
import { redactEvent } from "../../../src/sidecar/secrets/redacting-sink.js";
import { testPki, withExplicit, withTransparent, type Scenario } from "./fixtures.js";
import { readAll, SIDECAR_IP } from "./harness.js";

/**
 * Secrets in the sidecar's forwarder, in-process against loopback upstreams: the sentinel is
 * swapped for the value only in the declared header of inspected requests to the declared
 * host; anywhere else it is a `secret-leak`, refused in every mode before a byte goes up.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

let ca: CaMaterial;
beforeAll(async () => {
  ca = await createSandboxCa({ name: "test", now: Date.now() });
});

// Made up for the test; never a real credential.
const VALUE = "pm-real-token-5f0c9a7e1d";
const SENTINEL = `${SENTINEL_PREFIX}mfrggzdfmztwq2lknnwg23tpoa`;
const WATCHED = "watched-legacy-value-31337";
const SECRETS: SecretMaterial[] = [
  { name: "POSTMARK_TOKEN", value: VALUE, sentinel: SENTINEL, inject: { host: "api.allowed.test", header: "X-Postmark-Server-Token", format: "{}" } },
  { name: "LEGACY_TOKEN", value: WATCHED },
];

async function inspectedScenario(mode: Mode = "enforcing"): Promise<Scenario & { port: number }> {
  const pki = await testPki();
  const t = await withTransparent({
    kind: "tls",
    mode,
    egress: (port) => ({ allow: [{ host: "api.allowed.test", ports: [port], inspect: true }] }),
    inspection: { minter: new LeafMinter(ca), upstreamCa: [...rootCertificates, pki.caCert] },
  });
  disposers.push(t.dispose);
  t.ctx.setDecision({ ...t.ctx.decisionContext(), secrets: compileSecretWatch(SECRETS) });
  return t;
}

function client(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: SIDECAR_IP, port, servername: "api.allowed.test", ca: ca.certPem });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

async function send(port: number, head: string, body = ""): Promise<string> {
  const s = await client(port);
  const all = readAll(s as unknown as Socket);
  s.write(`${head}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  return (await all).toString();
}

type Recorded = { method: string; path: string; headers: Record<string, string | string[] | undefined> };
const requests = (s: Scenario): Recorded[] => (s.allowed as unknown as { requests: Recorded[] }).requests;

describe("the forwarder and secrets", () => {
  it("writes the real value into the declared header of an inspected request; the upstream gets it, and the event names the secret", async () => {
    const t = await inspectedScenario();
    const text = await send(t.port, `POST /email HTTP/1.1\r\nHost: api.allowed.test\r\nX-Postmark-Server-Token: ${SENTINEL}\r\n`, '{"To":"a@b.test"}');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(requests(t).map((r) => r.headers["x-postmark-server-token"])).toEqual([VALUE]);
    const decided = await t.sink.waitFor((e) => e.phase === "decide");
    expect(decided).toMatchObject({ verdict: "allow", injected: ["POSTMARK_TOKEN"] });
    expect(JSON.stringify(t.sink.events)).not.toContain(VALUE);
  });

  it.each(["enforcing", "observing"] as const)("in %s mode, the sentinel in another header, the URL or the body is refused with secret-leak, and nothing goes up", async (mode) => {
    const t = await inspectedScenario(mode);
    const cases: [string, string, string][] = [
      [`GET /x HTTP/1.1\r\nHost: api.allowed.test\r\nX-Other: ${SENTINEL}\r\n`, "", "POSTMARK_TOKEN sentinel in header"],
      [`GET /x?t=${SENTINEL} HTTP/1.1\r\nHost: api.allowed.test\r\n`, "", "POSTMARK_TOKEN sentinel in url"],
      [`POST /x HTTP/1.1\r\nHost: api.allowed.test\r\n`, JSON.stringify({ note: Buffer.from(SENTINEL).toString("base64") }), "POSTMARK_TOKEN sentinel in body (base64)"],
    ];
    for (const [head, body, leak] of cases) {
      const text = await send(t.port, head, body);
      expect(text, leak).toMatch(/^HTTP\/1\.1 403/);
      expect(text).toMatch(/secret-leak/);
      expect(text).not.toContain(VALUE);
      const event = await t.sink.waitFor((e) => e.verdict === "block" && (e.secretLeaks ?? []).includes(leak));
      expect(event.reasons).toContain("secret-leak");
    }
    expect(requests(t)).toEqual([]);
  });

  it("a watched value is refused in enforcing and let through (would-block) in observing", async () => {
    for (const [mode, status, verdict] of [["enforcing", 403, "block"], ["observing", 200, "would-block"]] as const) {
      const t = await inspectedScenario(mode);
      const text = await send(t.port, `POST /x HTTP/1.1\r\nHost: api.allowed.test\r\n`, `q=${encodeURIComponent(Buffer.from(WATCHED).toString("hex"))}`);
      expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status}`));
      expect(await t.sink.waitFor((e) => e.phase === "decide" && e.verdict === verdict)).toMatchObject({ reasons: ["secret-leak"], secretLeaks: ["LEGACY_TOKEN value in body (hex)"] });
    }
  });

  it("an AWS-key-shaped string in a JSON body is refused in enforcing (credential-pattern)", async () => {
    const t = await inspectedScenario();
    const text = await send(t.port, `POST /x HTTP/1.1\r\nHost: api.allowed.test\r\nContent-Type: application/json\r\n`, JSON.stringify({ k: `AKIA${"Z".repeat(4)}${"2".repeat(12)}` }));
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(await t.sink.waitFor((e) => e.verdict === "block")).toMatchObject({ reasons: ["credential-pattern"], credentials: ["aws-access-key"] });
    expect(requests(t)).toEqual([]);
  });

  it("the sentinel in the declared header of plain HTTP (not inspected) is a leak, never a substitution", async () => {
    const e = await withExplicit({ kind: "http", mode: "observing" });
    disposers.push(e.dispose);
    e.ctx.setDecision({ ...e.ctx.decisionContext(), secrets: compileSecretWatch([{ ...SECRETS[0]!, inject: { host: "api.allowed.test", header: "X-Postmark-Server-Token" } }]) });
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const r = request({ host: SIDECAR_IP, port: e.proxyPort, path: `http://api.allowed.test:${e.port}/email`, headers: { "X-Postmark-Server-Token": SENTINEL } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on("error", reject);
      r.end();
    });
    expect(status).toBe(403);
    expect(await e.sink.waitFor((ev) => ev.verdict === "block")).toMatchObject({ reasons: ["secret-leak"], secretLeaks: ["POSTMARK_TOKEN sentinel in header"] });
    expect((e.allowed as unknown as { requests: unknown[] }).requests).toEqual([]);
  });
});

describe("redactEvent", () => {
  it("replaces any field carrying a secret (any case, split over labels) by the secret's name", () => {
    const watch = compileSecretWatch(SECRETS);
    const event = { v: 1, ts: "t", id: "i", type: "dns", phase: "decide", server: "s", verdict: "block", reasons: ["secret-leak"], protocol: "dns", name: `${SENTINEL}.x.test`, nameAsSent: `${SENTINEL.toUpperCase()}.x.test`, host: "watched-legacy-va.lue-31337.x.test" } as const;
    const out = redactEvent(event, watch);
    expect(out).toMatchObject({ name: "[redacted: POSTMARK_TOKEN]", nameAsSent: "[redacted: POSTMARK_TOKEN]", host: "[redacted: LEGACY_TOKEN]", reasons: ["secret-leak"] });
    expect(redactEvent({ ...event, name: "ok.x.test", nameAsSent: "ok.x.test", host: "ok" }, watch)).toMatchObject({ name: "ok.x.test" });
  });
});
