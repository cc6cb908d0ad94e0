import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LifecycleEvent } from "../../src/core/events.js";
import type { NetworkInfo } from "../../src/docker/container-engine.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, upstreamCount, waitFor, type RunningFixture } from "./support/docker-test-env.js";
import { writeRunConfig } from "./support/hangar-cli.js";
import type { TestResolver } from "./support/test-resolver.js";

/**
 * runtime.upstreamResolvers, from inside a real sandbox: the sidecar resolves through the
 * resolver of ours it is given, never through the engine's embedded one (which forwards names it
 * does not know to the host's resolver, off this machine). Our resolver answers only the names our
 * fixtures register; the upstream here has no Docker alias, so the engine could not answer it.
 * And the guard: no test sidecar starts without a resolver of ours.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };

let env: DockerTestEnv;
let resolver: TestResolver;
let upstream: RunningFixture;
let box: StartedSandbox;
let attacker: AttackerSession;
const events: SandboxEvent[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
  resolver = await env.resolver();
  upstream = await env.runFixture("upstream.mjs", { name: "api", env: { NAME: "api" }, aliases: ["api.allowed.test"] });
  const { policy, file } = await env.policy(`resolvers-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: "*.allowed.test", ports: [8080] }] } });
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

describe("the sidecar's upstream resolver is ours", () => {
  it("the sidecar answers the sandbox on its batched UDP socket: the image carries the addon, and every test here goes through it", () => {
    const started = events.find((e): e is LifecycleEvent => e.type === "lifecycle" && e.action === "started");
    expect(started?.detail).toMatchObject({ dns: { udp: "batched" } });
  });

  it("a name under the declared wildcard that our resolver does not know: asked of our resolver, NXDOMAIN, and the sandbox gets ENOTFOUND", async () => {
    const name = `nobody-${env.run}.allowed.test`;
    expect(await attacker.send({ op: "lookup", name })).toMatchObject({ ok: false, error: "ENOTFOUND" });
    expect(await resolver.queries()).toContainEqual({ name, type: "A", rcode: "NXDOMAIN" });
    const dns = await waitFor(async () => events.find((e) => e.type === "dns" && e.name === name));
    expect(dns).toMatchObject({ verdict: "allow" });
  });

  it("a registered name under the wildcard: our resolver answers it (the engine has no alias for it) and the request arrives", async () => {
    const before = await upstreamCount(upstream.ip);
    expect(await attacker.send({ op: "http", url: "http://api.allowed.test:8080/hello" })).toMatchObject({ ok: true, status: 200, body: "hello from api\n" });
    expect(await upstreamCount(upstream.ip)).toBe(before + 1);
    expect(await resolver.queries()).toContainEqual({ name: "api.allowed.test", type: "A", rcode: "NOERROR" });
  });

  it("an undeclared name is refused in the sidecar, unresolved: not even our resolver hears it", async () => {
    expect(await attacker.send({ op: "lookup", name: `exfil-${env.run}.evil.test` })).toMatchObject({ ok: false });
    await waitFor(async () => events.find((e) => e.type === "dns" && e.name === `exfil-${env.run}.evil.test` && e.verdict === "block"));
    const asked = (await resolver.queries()).map((q) => q.name);
    expect(asked.length).toBeGreaterThan(0);
    // Everything the sidecar asked upstream is a name this file's tests caused under the declared wildcard.
    expect(asked.filter((n) => !n.endsWith(".allowed.test"))).toEqual([]);
  });
});

describe("the guard", () => {
  it("refuses to start a test sidecar with the engine's resolver or one not ours, before creating it", async () => {
    const { policy, file } = await env.policy(`unguarded-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: "api.allowed.test", ports: [8080] }] } });
    const base = await env.runtimeConfig();
    const sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
    const stateDir = await env.stateRoot();
    const startWith = (upstreamResolvers: string[] | undefined): Promise<unknown> => {
      const { upstreamResolvers: _ours, ...rest } = base.runtime;
      const runtime = { ...base, runtime: upstreamResolvers === undefined ? rest : { ...rest, upstreamResolvers } };
      return sandboxes.start({ policy, policyFile: file, runtime, image: ATTACKER, run: env.run, stateDir }).then(
        (started) => started.stop().then(() => "started"),
        (err: unknown) => err,
      );
    };
    const messageOf = (err: unknown): string => (err instanceof Error ? `${err.message} ${String((err.cause as Error | undefined)?.message)}` : String(err));
    expect(messageOf(await startWith(undefined))).toMatch(/would resolve through the engine's resolver/);
    expect(messageOf(await startWith(["192.0.2.53"]))).toMatch(/would resolve through 192\.0\.2\.53/);
    expect(await env.engine.listContainers({ labels: [`hangar.server=unguarded-${env.run}`, "hangar.role=sidecar"] })).toEqual([]);
  });

  it("writeRunConfig refuses an egress network with no resolver of ours", async () => {
    const elsewhere: NetworkInfo = { id: "none", name: `hangar-egress-${env.run}-none`, internal: false, ipv6: false, labels: {}, driverOptions: {}, subnets: [{ subnet: "172.31.0.0/16" }], containers: [] };
    await expect(writeRunConfig(`${await env.stateRoot()}/none.yaml`, { egress: elsewhere, sidecarImage: env.sidecarImage })).rejects.toThrow(/no resolver of ours/);
  });
});
