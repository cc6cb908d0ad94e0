import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PolicyInput } from "../../src/core/policy/policy-schema.js";
import { Pruner } from "../../src/runtime/pruner.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { sandboxNames } from "../../src/runtime/sandbox-specs.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, realSidecarSourceExists, upstreamCount, waitFor, type RunningFixture } from "./support/docker-test-env.js";

const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const REAL = realSidecarSourceExists();
const allowOnly = (...hosts: string[]): Partial<PolicyInput> => ({
  egress: { mode: "enforcing", allow: hosts.map((host) => ({ host, ports: [8080] })) },
});

let env: DockerTestEnv;
let sandboxes: Sandbox;
let allowed: RunningFixture;
let undeclared: RunningFixture;

interface Running {
  readonly box: StartedSandbox;
  readonly attacker: AttackerSession;
  readonly events: SandboxEvent[];
}

async function start(
  name: string,
  options: { maxRestarts?: number; policy?: Partial<PolicyInput>; sandbox?: Sandbox; run?: string; upstreamResolvers?: string[] } = {},
): Promise<Running> {
  const { policy, file } = await env.policy(`${name}-${env.run}`, options.policy ?? allowOnly("allowed.test"));
  const events: SandboxEvent[] = [];
  const runtime = await env.runtimeConfig(options.maxRestarts !== undefined ? { maxRestarts: options.maxRestarts } : {});
  const box = await (options.sandbox ?? sandboxes).start({
    policy,
    policyFile: file,
    runtime: options.upstreamResolvers === undefined ? runtime : { ...runtime, runtime: { ...runtime.runtime, upstreamResolvers: options.upstreamResolvers } },
    image: ATTACKER,
    run: options.run ?? env.run,
    stateDir: await env.stateRoot(),
    onEvent: (e) => events.push(e),
  });
  return { box, attacker: new AttackerSession(box.stdin, box.stdout), events };
}

const waitForEvent = (events: SandboxEvent[], match: (e: SandboxEvent) => boolean, timeoutMs = 15_000): Promise<SandboxEvent> =>
  waitFor(async () => events.find(match), timeoutMs);

beforeAll(async () => {
  env = await DockerTestEnv.create();
  sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
  allowed = await env.runFixture("upstream.mjs", { name: "allowed", env: { NAME: "allowed" }, aliases: ["allowed.test"] });
  undeclared = await env.runFixture("upstream.mjs", { name: "undeclared", env: { NAME: "undeclared" }, aliases: ["undeclared.test"] });
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe.runIf(REAL)("transparent path through the real sidecar", () => {
  it("fetches a declared upstream by name with Node's fetch (which ignores HTTP_PROXY); an undeclared one gets nothing", async () => {
    await using run = await startDisposable("fetch");
    const ok = await run.attacker.send({ op: "http", url: "http://allowed.test:8080/hello" });
    expect(ok).toMatchObject({ ok: true, status: 200, body: "hello from allowed\n" });
    const denied = await run.attacker.send({ op: "http", url: "http://undeclared.test:8080/hello" });
    expect(denied).toMatchObject({ ok: false });
    expect(await upstreamCount(undeclared.ip)).toBe(0);
    const egress = await waitForEvent(run.events, (e) => e.type === "egress" && e.phase === "decide" && e.name === "allowed.test");
    expect(egress).toMatchObject({ verdict: "allow", path: "transparent" });
    await waitForEvent(run.events, (e) => e.type === "dns" && e.name === "undeclared.test" && e.verdict === "block");
  });

  it("reloads the policy on request: a newly declared upstream becomes reachable", async () => {
    await using run = await startDisposable("reload");
    expect(await run.attacker.send({ op: "http", url: "http://undeclared.test:8080/" })).toMatchObject({ ok: false });
    const before = await upstreamCount(undeclared.ip);
    const { policy } = await env.policy(`reload-${env.run}`, allowOnly("allowed.test", "undeclared.test"));
    await run.box.reloadPolicy(stringify({ version: 1, name: policy.name, server: policy.server, egress: allowOnly("allowed.test", "undeclared.test").egress }));
    await waitForEvent(run.events, (e) => e.type === "lifecycle" && e.action === "reloaded");
    expect(await run.attacker.send({ op: "http", url: "http://undeclared.test:8080/" })).toMatchObject({ ok: true, status: 200 });
    expect(await upstreamCount(undeclared.ip)).toBe(before + 1);
  });
});

describe("sidecar death", () => {
  it("fails closed: with the sidecar dead and not restarted, the server reaches nothing", async () => {
    await using run = await startDisposable("dead", { maxRestarts: 0 });
    if (REAL) expect(await run.attacker.send({ op: "http", url: "http://allowed.test:8080/" })).toMatchObject({ ok: true });
    const before = await upstreamCount(allowed.ip);
    await env.engine.killContainer(run.box.sidecarId, "SIGKILL");
    await waitForEvent(run.events, (e) => e.type === "runtime" && e.action === "sidecar-exited");
    await waitForEvent(run.events, (e) => e.type === "runtime" && e.action === "sidecar-given-up");
    const probes = await Promise.all([
      run.attacker.send({ op: "http", url: "http://allowed.test:8080/", timeoutMs: 3000 }),
      run.attacker.send({ op: "lookup", name: "allowed.test", timeoutMs: 3000 }),
      run.attacker.send({ op: "tcp", host: run.box.sidecarAddress, port: 3128 }),
      run.attacker.send({ op: "tcp", host: allowed.ip, port: 8080 }),
    ]);
    for (const probe of probes) expect(probe).toMatchObject({ ok: false });
    expect(await upstreamCount(allowed.ip)).toBe(before);
  });

  it("restarts a killed sidecar at the same address, records it, and egress works again", async () => {
    await using run = await startDisposable("restart");
    await env.engine.killContainer(run.box.sidecarId, "SIGKILL");
    const exited = await waitForEvent(run.events, (e) => e.type === "runtime" && e.action === "sidecar-exited");
    expect(exited).toMatchObject({ server: run.box.server, detail: { exitCode: 137 } });
    const restarted = await waitForEvent(run.events, (e) => e.type === "runtime" && e.action === "sidecar-restarted");
    expect(restarted).toMatchObject({ detail: { restarts: 1, address: run.box.sidecarAddress } });
    expect((await env.engine.inspectContainer(run.box.sidecarId))?.addresses[run.box.network.name]).toBe(run.box.sidecarAddress);
    expect(run.box.sidecarRestarts).toBe(1);
    if (REAL) expect(await run.attacker.send({ op: "http", url: "http://allowed.test:8080/" })).toMatchObject({ ok: true, status: 200 });
  });
});

describe.runIf(REAL)("sidecar restarts keep the limits", () => {
  it("a killed sidecar's successor keeps counting distinct names: the 61st in the minute is refused after the restart", async () => {
    // Names under the wildcard are looked up at a resolver of ours (it answers everything and
    // counts), never through the engine's resolver.
    // It answers with an address of ours on the egress network (a trusted range), never used here.
    const resolver = await env.runFixture("dns-server.mjs", {
      name: "counters-resolver",
      env: { ANSWER: undeclared.ip },
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
    });
    await using run = await startDisposable("counters", {
      policy: { egress: { mode: "enforcing", allow: [{ host: "*.allowed.test", ports: [8080] }] } },
      upstreamResolvers: [resolver.ip],
    });
    const names = Array.from({ length: 61 }, (_, i) => `n${i}.allowed.test`);
    for (const name of names.slice(0, 60)) expect(await run.attacker.send({ op: "lookup", name })).toMatchObject({ ok: true });
    // The sidecar reports its counts at most once a second; a SIGKILL loses at most that.
    await new Promise((r) => setTimeout(r, 1_500));
    await env.engine.killContainer(run.box.sidecarId, "SIGKILL");
    await waitForEvent(run.events, (e) => e.type === "runtime" && e.action === "sidecar-restarted");
    const started = run.events.filter((e) => e.type === "lifecycle" && e.action === "started").at(-1);
    expect(started).toMatchObject({ detail: { restoredCounters: true } });
    const asked = await upstreamCount(resolver.ip);
    expect(await run.attacker.send({ op: "lookup", name: names[60]! })).toMatchObject({ ok: false });
    const refused = await waitForEvent(run.events, (e) => e.type === "dns" && e.name === names[60] && e.recordType === "A");
    expect(refused).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["tunnel-unique-rate"]) });
    // Refused unresolved: our resolver heard nothing more.
    expect(await upstreamCount(resolver.ip)).toBe(asked);
    // The counts are the control plane's business, not events.
    expect(run.events.some((e) => e.type === "lifecycle" && e.action === "counters")).toBe(false);
  });
});

describe("orphans and prune", () => {
  it("removes what a crashed run of the same server left behind, at the next start", async () => {
    // A "crashed" control plane: its owner pid is gone, its sandbox never stopped.
    const crashed = new Sandbox({ engine: env.engine, logger: env.logger, owner: "ghost:999999", isOwnerAlive: () => false });
    const ghost = await start("orphan", { sandbox: crashed });
    const successor = new Sandbox({ engine: env.engine, logger: env.logger, isOwnerAlive: (owner) => owner !== "ghost:999999" });
    const fresh = await start("orphan", { sandbox: successor }).catch((e: unknown) => e);
    expect(fresh).not.toBeInstanceOf(Error);
    const { box } = fresh as Running;
    expect(await env.engine.inspectContainer(ghost.box.serverId)).toBeUndefined();
    expect(await env.engine.inspectContainer(ghost.box.sidecarId)).toBeUndefined();
    await box.stop();
    await ghost.box.stop().catch(() => undefined);
  });

  it("starts a second sandbox of a server a live process is running, beside the first: own network and subnet", async () => {
    await using first = await startDisposable("twice");
    // Another run of the same server, as a second client would start it.
    await using second = await startDisposable("twice", { run: `${env.run}b` });
    expect(second.box.network.name).not.toBe(first.box.network.name);
    expect(second.box.network.subnet).not.toBe(first.box.network.subnet);
    expect((await env.engine.inspectContainer(first.box.serverId))?.running).toBe(true);
    expect((await env.engine.inspectContainer(second.box.serverId))?.running).toBe(true);
  });

  it("prune removes one server's objects and leaves the others", async () => {
    const keep = await start("keep");
    const gone = await start("gone");
    const result = await new Pruner(env.engine).prune({ server: gone.box.server });
    expect(result).toMatchObject({ containers: 2, networks: 1 });
    expect(await env.engine.inspectNetwork(sandboxNames({ server: gone.box.server, run: env.run, owner: "" }).network)).toBeUndefined();
    expect((await env.engine.inspectContainer(keep.box.serverId))?.running).toBe(true);
    await gone.box.stop().catch(() => undefined);
    await keep.box.stop();
  });
});

async function startDisposable(
  name: string,
  options: { maxRestarts?: number; run?: string; policy?: Partial<PolicyInput>; upstreamResolvers?: string[] } = {},
): Promise<Running & AsyncDisposable> {
  const running = await start(name, options);
  return { ...running, [Symbol.asyncDispose]: () => running.box.stop() };
}
