import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, type RunningFixture } from "./support/docker-test-env.js";

/**
 * A connection flood from inside a real sandbox (issue 9, item 5). The server opens 3000
 * silent connections to the sidecar's transparent port for a declared destination and holds
 * them for 20 s. The sidecar stays up (no OOM kill, no restart), stays under its cap, reports
 * the refusals rate-limited, and a declared request made during the flood is still answered.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const PORT = 8080;
const ALLOWED = `api.allowed.test:${PORT}`;
const FLOOD = { count: 3000, holdMs: 20_000 };

const run = promisify(execFile);
let env: DockerTestEnv;
let allowed: RunningFixture;
let box: StartedSandbox;
let attacker: AttackerSession;
const events: SandboxEvent[] = [];

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: ${ALLOWED}\r\nConnection: close\r\n\r\n`;
const isEgress = (e: SandboxEvent): e is EgressEvent => e.type === "egress";

/** The sidecar container's memory use as the engine reports it, in MiB, and its state. */
async function sidecarFigures(): Promise<{ memMiB: number; running: boolean; oomKilled: boolean; restarts: number }> {
  const stats = await run("docker", ["stats", "--no-stream", "--format", "{{.MemUsage}}", box.sidecarId]);
  const m = /^([\d.]+)\s*(KiB|MiB|GiB|kB|MB|GB|B)/.exec(stats.stdout.trim());
  const unit = { B: 1 / 2 ** 20, KiB: 1 / 1024, kB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 } as const;
  const memMiB = m === null ? NaN : Number(m[1]) * unit[m[2] as keyof typeof unit];
  const inspect = await run("docker", ["inspect", "--format", "{{.State.Running}} {{.State.OOMKilled}} {{.RestartCount}}", box.sidecarId]);
  const [running, oom, restarts] = inspect.stdout.trim().split(" ");
  return { memMiB, running: running === "true", oomKilled: oom === "true", restarts: Number(restarts) };
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  allowed = await env.runFixture("upstream.mjs", { name: "allowed", env: { NAME: "allowed" }, aliases: ["api.allowed.test"] });
  const { policy, file } = await env.policy(`flood-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: "api.allowed.test", ports: [PORT] }] } });
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

describe("a connection flood from inside a sandbox", () => {
  it("leaves the sidecar up and the declared destination answering", async () => {
    const control = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/before")] });
    expect(String(control["data"])).toMatch(/^HTTP\/1\.1 200/);
    const before = await sidecarFigures();

    const flooding = attacker.send({ op: "flood", host: box.sidecarAddress, port: PORT, ...FLOOD });
    // Well into the hold: every flood connection is open or was refused, and the silent ones are past their peek.
    await new Promise((r) => setTimeout(r, 8000));
    const during = await sidecarFigures();
    const answered = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/during")] });
    const flood = await flooding;
    const after = await sidecarFigures();
    const afterFlood = await attacker.send({ op: "exchange", host: "api.allowed.test", port: PORT, steps: [get("/after")] });

    const egress = events.filter(isEgress);
    const capEvents = egress.filter((e) => e.reasons.includes("connection-cap"));
    const figures = {
      flood,
      sidecarMiB: { before: before.memMiB, during: during.memMiB, after: after.memMiB },
      declaredAnsweredDuringFlood: String(answered["data"]).slice(0, 15),
      declaredAnsweredAfterFlood: String(afterFlood["data"]).slice(0, 15),
      capEvents: capEvents.length,
      runtime: events.filter((e) => e.type === "runtime").map((e) => (e as { action: string }).action),
    };
    console.log(`flood figures: ${JSON.stringify(figures)}`);

    expect(flood["opened"]).toBeGreaterThan(1024);
    expect(String(answered["data"])).toMatch(/^HTTP\/1\.1 200/);
    expect(String(afterFlood["data"])).toMatch(/^HTTP\/1\.1 200/);
    // Past the cap the flood churned itself: the sidecar cut silent connections rather than hold 3000.
    expect(Number(flood["closedByPeer"])).toBeGreaterThan(0);
    expect(capEvents.length).toBeGreaterThan(0);
    expect(capEvents.length).toBeLessThanOrEqual(20 * 40); // rate-limited: 20 a second at most
    expect(during).toMatchObject({ running: true, oomKilled: false, restarts: 0 });
    expect(after).toMatchObject({ running: true, oomKilled: false, restarts: 0 });
    expect(box.sidecarRestarts).toBe(0);
    // The declared upstream itself saw the requests, and none of the flood.
    const seen = (await (await fetch(`http://${allowed.ip}:8080/__count`, { signal: AbortSignal.timeout(5000) })).json()) as { seen: { url: string }[] };
    expect(seen.seen.map((s) => s.url)).toEqual(expect.arrayContaining(["/before", "/during", "/after"]));
    expect(events.some((e) => e.type === "runtime" && e.action === "sidecar-exited")).toBe(false);
  }, 180_000);
});
