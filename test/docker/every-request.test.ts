import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { EgressEvent } from "../../src/core/events.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, waitFor, type RunningFixture } from "./support/docker-test-env.js";

/**
 * The message-level rows of the bypass catalogue, from inside a real sandbox: an undeclared
 * virtual host reached behind a declared address. `api.allowed.test` is an upstream of ours
 * that would serve any Host it is sent (it records each request's Host); `evil.test` is
 * another, declared nowhere. After every attack the declared address has served no request
 * for evil.test, nothing after a refusal, and the undeclared upstream's own count is zero.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const PORT = 8080;
const ALLOWED = `api.allowed.test:${PORT}`;
const EVIL = `evil.test:${PORT}`;

let env: DockerTestEnv;
let allowed: RunningFixture;
let undeclared: RunningFixture;
let box: StartedSandbox;
let attacker: AttackerSession;
const events: SandboxEvent[] = [];

interface Seen {
  readonly host: string | null;
  readonly url: string;
}

async function upstream(ip: string): Promise<{ count: number; seen: Seen[] }> {
  const res = await fetch(`http://${ip}:8080/__count`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as { count: number; seen: Seen[] };
}

/** The requests the declared address served whose path starts with `prefix`. */
async function served(prefix: string): Promise<string[]> {
  return (await upstream(allowed.ip)).seen.filter((s) => s.url.startsWith(prefix)).map((s) => `${s.host ?? ""} ${s.url}`);
}

const get = (path: string, host: string, target = path): string => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

const isEgress = (e: SandboxEvent): e is EgressEvent => e.type === "egress";

function refusal(match: (e: EgressEvent) => boolean): Promise<EgressEvent> {
  return waitFor(async () => events.filter(isEgress).find((e) => e.phase === "decide" && e.verdict === "block" && match(e)), 15_000);
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  allowed = await env.runFixture("upstream.mjs", { name: "allowed", env: { NAME: "allowed" }, aliases: ["api.allowed.test"] });
  undeclared = await env.runFixture("upstream.mjs", { name: "undeclared", env: { NAME: "undeclared" }, aliases: ["evil.test"] });
  const { policy, file } = await env.policy(`requests-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: "api.allowed.test", ports: [PORT] }] } });
  box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
    policy,
    policyFile: file,
    runtime: await env.runtimeConfig(),
    image: ATTACKER,
    run: env.run,
    stateDir: await env.stateRoot(),
    onEvent: (e) => events.push(e),
  });
  attacker = new AttackerSession(box.stdin, box.stdout);
}, 600_000);

afterAll(async () => {
  await box?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("every HTTP request is decided, from inside a sandbox", () => {
  it("control: a declared request is served", async () => {
    const r = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/control", ALLOWED)] });
    expect(String(r["data"])).toMatch(/^HTTP\/1\.1 200/);
    expect(await served("/control")).toEqual([`${ALLOWED} /control`]);
  });

  it("refuses a keep-alive Host switch", async () => {
    const r = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/ka-1", ALLOWED), get("/ka-2", EVIL), get("/ka-3", ALLOWED)] });
    const data = String(r["data"]);
    expect(data).toMatch(/^HTTP\/1\.1 200/);
    expect(data).toContain("HTTP/1.1 403");
    expect(r["closed"]).toBe(true);
    expect(await refusal((e) => e.url === "/ka-2")).toMatchObject({ name: "evil.test", reasons: ["undeclared-host"], path: "transparent" });
    expect(await served("/ka-")).toEqual([`${ALLOWED} /ka-1`]);
    expect((await upstream(undeclared.ip)).count).toBe(0);
  });

  it("refuses a pipelined request, and forwards nothing after it", async () => {
    const r = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/pipe-1", ALLOWED) + get("/pipe-2", EVIL) + get("/pipe-3", ALLOWED)] });
    expect(String(r["data"]).match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 403"]);
    await refusal((e) => e.url === "/pipe-2");
    expect(await served("/pipe-")).toEqual([`${ALLOWED} /pipe-1`]);
    expect((await upstream(undeclared.ip)).count).toBe(0);
  });

  it("refuses an absolute-form URI that disagrees with Host", async () => {
    const r = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/abs", ALLOWED, `http://${EVIL}/abs`)] });
    expect(String(r["data"])).toMatch(/^HTTP\/1\.1 403/);
    expect(await refusal((e) => e.url === `http://${EVIL}/abs`)).toMatchObject({ reasons: expect.arrayContaining(["host-mismatch"]) });
    expect(await served("/abs")).toEqual([]);
    expect((await upstream(undeclared.ip)).count).toBe(0);
  });

  it("refuses plaintext HTTP inside a CONNECT tunnel whose Host is not the authority", async () => {
    const steps = [`CONNECT ${ALLOWED} HTTP/1.1\r\nHost: ${ALLOWED}\r\n\r\n`, get("/tunnel-1", ALLOWED), get("/tunnel-2", EVIL), get("/tunnel-3", ALLOWED)];
    const r = await attacker.send({ op: "exchange", host: box.sidecarAddress, port: 3128, steps });
    expect(String(r["data"]).match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 403"]);
    expect(await refusal((e) => e.url === "/tunnel-2")).toMatchObject({ connect: ALLOWED, protocol: "http", reasons: expect.arrayContaining(["host-mismatch"]) });
    expect(await served("/tunnel-")).toEqual([`${ALLOWED} /tunnel-1`]);
    expect((await upstream(undeclared.ip)).count).toBe(0);
  });

  it("refuses TLS without SNI inside a CONNECT tunnel to a name", async () => {
    const before = (await upstream(allowed.ip)).count;
    const r = await attacker.send({ op: "tlsInConnect", proxyHost: box.sidecarAddress, proxyPort: 3128, authority: ALLOWED, servername: "" });
    expect(r).toMatchObject({ ok: false, stage: "tls", status: 200 });
    expect(await refusal((e) => e.protocol === "connect" && e.reasons.includes("sni-missing"))).toMatchObject({ name: "api.allowed.test", port: PORT });
    // Nothing was dialled for it: no allow event for a connect attempt, nothing served.
    expect(events.filter(isEgress).some((e) => e.protocol === "connect" && e.verdict === "allow")).toBe(false);
    expect((await upstream(allowed.ip)).count).toBe(before);
    expect((await upstream(undeclared.ip)).count).toBe(0);
  });
});
