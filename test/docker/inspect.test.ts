import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { makeTestPki, type TestPki } from "../support/tls.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, upstreamCount, waitFor, type RunningFixture } from "./support/docker-test-env.js";

/**
 * `inspect: true` in a real sandbox: the sidecar terminates TLS with the sandbox CA (which the
 * server trusts through NODE_EXTRA_CA_CERTS and a bundle), decides every request, and
 * re-originates TLS to an upstream of ours whose own CA the operator declared in
 * runtime.upstreamCaFile. The CA's private key is nowhere the server can read.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };

let env: DockerTestEnv;
let pki: TestPki;
let good: RunningFixture;
let bad: RunningFixture;
let undeclared: RunningFixture;
let box: StartedSandbox;
let attacker: AttackerSession;
const events: SandboxEvent[] = [];

const egress = (): EgressEvent[] => events.filter((e): e is EgressEvent => e.type === "egress");
const waitForEgress = (match: (e: EgressEvent) => boolean): Promise<EgressEvent> => waitFor(async () => egress().find(match), 15_000);

async function seen(ip: string): Promise<{ host: string | null; url: string; tls: boolean }[]> {
  const res = await fetch(`http://${ip}:8080/__count`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { seen: { host: string | null; url: string; tls: boolean }[] }).seen;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  pki = await makeTestPki(["api.allowed.test"]);
  // Another CA, which the operator did not declare: its upstream must be refused.
  const stranger = await makeTestPki(["bad.allowed.test"]);
  const tlsFixture = (name: string, alias: string, p: TestPki) =>
    env.runFixture("upstream.mjs", { name, env: { NAME: alias, PORT: "443", TLS_CERT: p.cert, TLS_KEY: p.key }, sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" }, aliases: [alias] });
  good = await tlsFixture("good", "api.allowed.test", pki);
  bad = await tlsFixture("bad", "bad.allowed.test", stranger);
  undeclared = await env.runFixture("upstream.mjs", { name: "undeclared", env: { NAME: "evil" }, aliases: ["evil.test"] });

  const state = await env.stateRoot();
  const upstreamCaFile = join(state, "upstream-ca.pem");
  await writeFile(upstreamCaFile, pki.caCert);
  const runtime = await env.runtimeConfig();
  const { policy, file } = await env.policy(`inspect-${env.run}`, {
    egress: {
      mode: "enforcing",
      allow: [
        { host: "api.allowed.test", ports: [443], inspect: true, http: [{ method: "POST", path: "/email" }, { method: "GET", path: "/status" }] },
        { host: "bad.allowed.test", ports: [443], inspect: true },
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
    onEvent: (e) => events.push(e),
  });
  attacker = new AttackerSession(box.stdin, box.stdout);
}, 600_000);

afterAll(async () => {
  await box?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("inspected TLS, from inside a sandbox", () => {
  it("a declared request goes through: the server trusts the sandbox CA, the sidecar verifies the upstream", async () => {
    const r = await attacker.send({ op: "request", url: "https://api.allowed.test/email", method: "POST", body: '{"To":"a@b.test"}', headers: { "content-type": "application/json" } });
    expect(r).toMatchObject({ ok: true, status: 200, body: "hello from api.allowed.test\n" });
    expect((await seen(good.ip)).filter((s) => s.url === "/email")).toEqual([expect.objectContaining({ host: "api.allowed.test", tls: true })]);
    expect(await waitForEgress((e) => e.phase === "decide" && e.url === "/email")).toMatchObject({ verdict: "allow", method: "POST", sni: "api.allowed.test", path: "transparent" });
  });

  it("a request outside the rule's routes is refused before it leaves", async () => {
    const r = await attacker.send({ op: "request", url: "https://api.allowed.test/admin?user=1" });
    expect(r).toMatchObject({ ok: true, status: 403, reasons: "undeclared-route" });
    expect((await seen(good.ip)).some((s) => s.url.startsWith("/admin"))).toBe(false);
  });

  it("Host ≠ SNI inside inspected TLS (domain fronting) is refused; the undeclared upstream gets nothing", async () => {
    const r = await attacker.send({ op: "tlsExchange", host: "api.allowed.test", port: 443, servername: "api.allowed.test", steps: ["GET /status HTTP/1.1\r\nHost: evil.test\r\n\r\n"] });
    expect(String(r["data"])).toMatch(/^HTTP\/1\.1 403/);
    expect(await waitForEgress((e) => e.verdict === "block" && e.host === "evil.test")).toMatchObject({ reasons: expect.arrayContaining(["host-mismatch"]), sni: "api.allowed.test" });
    expect((await seen(good.ip)).some((s) => s.host === "evil.test")).toBe(false);
    expect(await upstreamCount(undeclared.ip)).toBe(0);
  });

  it("an upstream whose certificate does not verify is refused, with an event that says so", async () => {
    const r = await attacker.send({ op: "request", url: "https://bad.allowed.test/x" });
    expect(r).toMatchObject({ ok: true, status: 502, reasons: "upstream-certificate" });
    expect(await waitForEgress((e) => e.phase === "close" && e.name === "bad.allowed.test")).toMatchObject({ verdict: "block", reasons: ["upstream-certificate"] });
    expect(await seen(bad.ip)).toEqual([]);
  });

  it("a client that pins another CA fails closed, with an event that says so", async () => {
    const before = (await seen(good.ip)).length;
    const r = await attacker.send({ op: "tlsExchange", host: "api.allowed.test", port: 443, servername: "api.allowed.test", ca: pki.caCert, steps: ["GET /status HTTP/1.1\r\nHost: api.allowed.test\r\n\r\n"] });
    expect(r).toMatchObject({ ok: false });
    expect(await waitForEgress((e) => e.reasons.includes("client-rejected-ca"))).toMatchObject({ verdict: "block", sni: "api.allowed.test" });
    expect((await seen(good.ip)).length).toBe(before);
  });

  it("the CA's private key is nowhere in the server container, nor in either container's inspect", async () => {
    const r = await attacker.send({ op: "findPrivateKeys" });
    expect(r["hits"]).toEqual([]);
    expect(Number(r["files"])).toBeGreaterThan(10);
    expect(r["caEnv"]).toBe("/etc/hangar-ca/ca.crt");
    expect(String(r["ca"])).toContain("BEGIN CERTIFICATE");
    const docker = new Dockerode();
    for (const id of [box.serverId, box.sidecarId]) {
      // What `docker inspect` shows: env, labels, mounts, command line.
      const raw = JSON.stringify(await docker.getContainer(id).inspect());
      expect(raw).not.toContain("PRIVATE KEY");
      expect(raw).not.toContain("caKeyPem");
    }
  });
});
