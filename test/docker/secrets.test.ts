import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { makeTestPki, type TestPki } from "../support/tls.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, waitFor, type RunningFixture } from "./support/docker-test-env.js";

/**
 * Secrets never enter the sandbox: a server whose policy injects MAIL_TOKEN for api.mail.test
 * holds a per-run sentinel; the sidecar writes the real value into X-Mail-Token on inspected
 * requests to api.mail.test alone. The sentinel anywhere else (another declared host, another
 * header, the URL, the body, a DNS name, an SNI, a CONNECT authority) is `secret-leak`,
 * refused in every mode. Both upstreams are ours, over HTTPS, with a CA the operator declared
 * in runtime.upstreamCaFile; their own logs say what arrived.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
// Random per run, made up: never a real credential.
const VALUE = `mail-real-${randomBytes(12).toString("hex")}`;
const LEGACY = `legacy-real-${randomBytes(12).toString("hex")}`;

let env: DockerTestEnv;
let pki: TestPki;
let api: RunningFixture;
let other: RunningFixture;
let box: StartedSandbox;
let attacker: AttackerSession;
let sentinel: string;
const events: SandboxEvent[] = [];

const egress = (): EgressEvent[] => events.filter((e): e is EgressEvent => e.type === "egress" || e.type === "dns");
const waitForEvent = (match: (e: EgressEvent) => boolean): Promise<EgressEvent> => waitFor(async () => egress().find(match), 15_000);

interface Seen {
  host: string | null;
  url: string;
  tls: boolean;
  headers: Record<string, string>;
  body: string;
}
async function seen(ip: string): Promise<Seen[]> {
  const res = await fetch(`http://${ip}:8080/__count`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { seen: Seen[] }).seen;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  pki = await makeTestPki(["api.mail.test", "other.mail.test"]);
  const tlsFixture = (name: string, alias: string) =>
    env.runFixture("upstream.mjs", { name, env: { NAME: alias, PORT: "443", TLS_CERT: pki.cert, TLS_KEY: pki.key }, sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" }, aliases: [alias] });
  api = await tlsFixture("mail-api", "api.mail.test");
  other = await tlsFixture("mail-other", "other.mail.test");

  const state = await env.stateRoot();
  const upstreamCaFile = join(state, "upstream-ca.pem");
  await writeFile(upstreamCaFile, pki.caCert);
  const runtime = await env.runtimeConfig();
  const { policy, file } = await env.policy(`secrets-${env.run}`, {
    server: {
      image: { ref: FIXTURES_IMAGE },
      command: ["node", "/fixtures/attacker.mjs"],
      secrets: [{ name: "MAIL_TOKEN", inject: { host: "api.mail.test", header: "X-Mail-Token" } }, "LEGACY_TOKEN"],
    },
    egress: {
      mode: "enforcing",
      allow: [
        { host: "api.mail.test", ports: [443], inspect: true },
        { host: "other.mail.test", ports: [443], inspect: true },
      ],
    },
  });
  box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
    policy,
    policyFile: file,
    runtime: { ...runtime, runtime: { ...runtime.runtime, upstreamCaFile } },
    image: ATTACKER,
    run: env.run,
    stateDir: state,
    secretSource: { MAIL_TOKEN: VALUE, LEGACY_TOKEN: LEGACY },
    onEvent: (e) => events.push(e),
  });
  attacker = new AttackerSession(box.stdin, box.stdout);
  sentinel = String((await attacker.send({ op: "env", name: "MAIL_TOKEN" }))["value"]);
}, 600_000);

afterAll(async () => {
  await box?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

const half = (s: string): string[] => [s.slice(0, 10), s.slice(10)];

describe("an injected secret, from inside a sandbox", () => {
  it("the server holds a sentinel; the value is in no env value and no file it can read", async () => {
    expect(sentinel).toMatch(/^hangar-sentinel-[a-z2-7]{26}$/);
    const r = await attacker.send({ op: "findText", parts: half(VALUE) });
    expect(r["hits"]).toEqual([]);
    expect(Number(r["files"])).toBeGreaterThan(10);
    // The same search finds what is there: the sentinel, in env.
    expect((await attacker.send({ op: "findText", parts: half(sentinel) }))["hits"]).toContain("env:MAIL_TOKEN");
  });

  it("its request to the declared API over HTTPS works, and the upstream receives the real value in the declared header", async () => {
    const r = await attacker.send({ op: "request", url: "https://api.mail.test/send", method: "POST", headers: { "x-mail-token": sentinel, "content-type": "application/json" }, body: '{"To":"a@b.test"}' });
    expect(r).toMatchObject({ ok: true, status: 200, body: "hello from api.mail.test\n" });
    const got = (await seen(api.ip)).filter((s) => s.url === "/send");
    expect(got.map((s) => [s.tls, s.headers["x-mail-token"], s.body])).toEqual([[true, VALUE, '{"To":"a@b.test"}']]);
    expect(await waitForEvent((e) => e.phase === "decide" && e.url === "/send")).toMatchObject({ verdict: "allow", injected: ["MAIL_TOKEN"], sni: "api.mail.test" });
  });

  const leaks: [string, Record<string, unknown>, string][] = [
    ["the declared header, another declared host", { url: "https://other.mail.test/a", headers: { "x-mail-token": "S" } }, "MAIL_TOKEN sentinel in header"],
    ["another header", { url: "https://other.mail.test/b", headers: { authorization: "Bearer S" } }, "MAIL_TOKEN sentinel in header"],
    ["the query", { url: "https://other.mail.test/c?token=S" }, "MAIL_TOKEN sentinel in url"],
    ["a JSON body", { url: "https://other.mail.test/d", method: "POST", body: '{"note":"S"}' }, "MAIL_TOKEN sentinel in body"],
    ["a base64 body, to the declared host itself", { url: "https://api.mail.test/e", method: "POST", body: "B64" }, "MAIL_TOKEN sentinel in body (base64)"],
  ];
  it.each(leaks)("the sentinel in %s is refused with secret-leak before it leaves", async (_, request, described) => {
    const fill = (v: unknown): unknown => (typeof v === "string" ? v.replace("B64", Buffer.from(`x:${sentinel}`).toString("base64")).replace("S", sentinel) : v);
    const headers = Object.fromEntries(Object.entries((request["headers"] as Record<string, string>) ?? {}).map(([k, v]) => [k, fill(v)]));
    const r = await attacker.send({ op: "request", ...request, url: fill(request["url"]), headers, ...(request["body"] !== undefined ? { body: fill(request["body"]) } : {}) });
    expect(r).toMatchObject({ ok: true, status: 403 });
    expect(String(r["reasons"])).toContain("secret-leak");
    const event = await waitForEvent((e) => e.verdict === "block" && (e.secretLeaks ?? []).includes(described));
    expect(event.reasons).toContain("secret-leak");
  });

  it("the sentinel in a DNS name, an SNI or a CONNECT authority is refused with secret-leak; the event names the secret, never shows it", async () => {
    const name = `${sentinel}.other.mail.test`;
    expect(await attacker.send({ op: "lookup", name })).toMatchObject({ ok: false });
    await waitForEvent((e) => e.type === "dns" && e.reasons.includes("secret-leak") && e.name === "[redacted: MAIL_TOKEN]");
    const sni = await attacker.send({ op: "tlsExchange", host: "api.mail.test", port: 443, servername: name, steps: ["GET / HTTP/1.1\r\nHost: api.mail.test\r\n\r\n"] });
    expect(String(sni["data"] ?? "")).not.toMatch(/^HTTP\/1\.1 200/);
    await waitForEvent((e) => e.type === "egress" && e.protocol === "tls" && e.reasons.includes("secret-leak") && e.sni === "[redacted: MAIL_TOKEN]");
    const proxy = box.network.sidecar;
    const tunnel = await attacker.send({ op: "tlsInConnect", proxyHost: proxy, proxyPort: 3128, authority: `${name}:443`, servername: name });
    expect(tunnel).toMatchObject({ ok: false, stage: "connect" });
    await waitForEvent((e) => e.protocol === "connect" && e.reasons.includes("secret-leak"));
  });

  it("a plain secret's value (watched, in the server's env) sent to a declared host is refused with secret-leak", async () => {
    const r = await attacker.send({ op: "request", url: `https://other.mail.test/f?x=${Buffer.from(LEGACY).toString("hex")}` });
    expect(r).toMatchObject({ ok: true, status: 403 });
    expect(await waitForEvent((e) => (e.secretLeaks ?? []).includes("LEGACY_TOKEN value in url (hex)"))).toMatchObject({ verdict: "block", reasons: ["secret-leak"] });
  });

  it("an AWS-key-shaped string in a JSON body to the inspected API is refused in ENFORCING (credential-pattern)", async () => {
    const key = `AKIA${"Q".repeat(4)}${"7".repeat(12)}`;
    const r = await attacker.send({ op: "request", url: "https://api.mail.test/g", method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key }) });
    expect(r).toMatchObject({ ok: true, status: 403, reasons: "credential-pattern" });
    expect(await waitForEvent((e) => e.url === "/g")).toMatchObject({ verdict: "block", credentials: ["aws-access-key"] });
  });

  it("our upstreams' own logs are clean: the other host got nothing, the API got the value once, in its header, and never the sentinel", async () => {
    expect(await seen(other.ip)).toEqual([]);
    const all = await seen(api.ip);
    expect(all.map((s) => s.url)).toEqual(["/send"]);
    const text = JSON.stringify(all);
    expect(text).not.toContain(sentinel);
    expect(text.split(VALUE)).toHaveLength(2);
  });

  it("docker inspect of both containers, and every event, shows no secret value (and the events no sentinel)", async () => {
    const docker = new Dockerode();
    for (const id of [box.serverId, box.sidecarId]) {
      const raw = JSON.stringify(await docker.getContainer(id).inspect());
      expect(raw).not.toContain(VALUE);
    }
    expect(JSON.stringify(await docker.getContainer(box.serverId).inspect())).toContain(sentinel);
    const all = JSON.stringify(events);
    expect(all).not.toContain(VALUE);
    expect(all).not.toContain(LEGACY);
    expect(all).not.toContain(sentinel);
  });
});
