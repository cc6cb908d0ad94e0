import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, waitFor } from "./support/docker-test-env.js";

/**
 * The server container starts while its sidecar is still starting, held by the start gate
 * (src/runtime/start-gate.ts): its very first instructions, run before it reads anything,
 * must find the sidecar serving DNS and the proxy, and leave events. And the start-up CPU
 * boost: no quota while the server starts, the policy's quota once the boost ends, whatever
 * the server does; with runtime.startCpuBoostMs 0 the quota holds from the first instant.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const PROBE_NAME = "first-instant.gate.test";
const START_PROBES = [
  { op: "dns", server: "$SIDECAR", name: PROBE_NAME, timeoutMs: 1000 },
  { op: "tcp", host: "$SIDECAR", port: 3128, timeoutMs: 1000 },
  { op: "limits" },
];

let env: DockerTestEnv;
const boxes: StartedSandbox[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
}, 600_000);

afterAll(async () => {
  for (const box of boxes) await box.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

async function start(name: string, boostMs?: number): Promise<{ box: StartedSandbox; attacker: AttackerSession; events: SandboxEvent[] }> {
  const events: SandboxEvent[] = [];
  const { policy, file } = await env.policy(`${name}-${env.run}`, {
    server: { image: { ref: FIXTURES_IMAGE }, resources: { memory: "96m", cpus: 0.25, pids: 64 }, env: { HANGAR_TEST_START_PROBES: JSON.stringify(START_PROBES) } },
  });
  const config = await env.runtimeConfig();
  const runtime = boostMs === undefined ? config : { ...config, runtime: { ...config.runtime, startCpuBoostMs: boostMs } };
  const box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
    policy,
    policyFile: file,
    runtime,
    image: ATTACKER,
    run: `${env.run}${name.slice(0, 1)}`,
    stateDir: await env.stateRoot(),
    onEvent: (e) => events.push(e),
  });
  boxes.push(box);
  return { box, attacker: new AttackerSession(box.stdin, box.stdout), events };
}

type Probe = { op: string; ok: boolean; rcode?: number; error?: string; cpuQuota?: string; cpuPeriod?: string | null };
const quotaShare = (probe: Probe): number => {
  // cgroup v1: quota and period files (-1: none); v2: "max period" or "quota period".
  const [quota, v2Period] = String(probe.cpuQuota).split(" ");
  if (quota === "-1" || quota === "max") return Infinity;
  return Number(quota) / Number(probe.cpuPeriod ?? v2Period);
};

describe("the start gate and the start-up CPU boost", () => {
  it("lets the server's first instructions find the sidecar serving: its first DNS query is answered and seen, its proxy accepts", async () => {
    const { box, attacker, events } = await start("gate");
    const { results } = (await attacker.send({ op: "startProbes" })) as unknown as { results: Probe[] };
    const [dns, proxy, limits] = results;
    expect(dns).toMatchObject({ op: "dns", ok: true, rcode: 3 });
    expect(proxy).toMatchObject({ op: "tcp", ok: true });
    await waitFor(async () => events.find((e) => e.type === "dns" && JSON.stringify(e).includes(PROBE_NAME)), 10_000);
    // The boost: no quota while the server starts, the policy's once it ends.
    expect(quotaShare(limits!)).toBe(Infinity);
    await box.cpuLimited;
    const after = (await attacker.send({ op: "limits" })) as unknown as Probe;
    expect(quotaShare(after)).toBeCloseTo(0.25, 5);
  }, 120_000);

  it("applies the quota from the first instant when runtime.startCpuBoostMs is 0", async () => {
    const { attacker } = await start("noboost", 0);
    const { results } = (await attacker.send({ op: "startProbes" })) as unknown as { results: Probe[] };
    expect(quotaShare(results[2]!)).toBeCloseTo(0.25, 5);
    expect(results[0]).toMatchObject({ op: "dns", ok: true });
  }, 120_000);
});
