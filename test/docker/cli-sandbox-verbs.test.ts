import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PolicyInput } from "../../src/core/policy/policy-schema.js";
import { hangarLabels } from "../../src/docker/labels.js";
import { runCli } from "../../src/cli/run-cli.js";
import { Pruner } from "../../src/runtime/pruner.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { sandboxNames } from "../../src/runtime/sandbox-specs.js";
import { captureIo, hangar } from "../cli/capture-io.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, realSidecarSourceExists, waitFor } from "./support/docker-test-env.js";

/**
 * `hangar ps`, `stop`, `events` and `prune` against real sandboxes, run in-process through
 * the CLI's own entry (runCli), exactly as a shell would see them: exit code, stdout, stderr.
 * Only this file's objects are touched (its server names and run ids): `prune` is always
 * narrowed with --run, so suites running beside it keep theirs.
 */

const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const REAL = realSidecarSourceExists();
const allowOnly = (...hosts: string[]): Partial<PolicyInput> => ({ egress: { mode: "enforcing", allow: hosts.map((host) => ({ host, ports: [8080] })) } });

let env: DockerTestEnv;
let sandboxes: Sandbox;
const started: StartedSandbox[] = [];

async function start(name: string, options: { sandbox?: Sandbox; run?: string } = {}): Promise<{ box: StartedSandbox; attacker: AttackerSession }> {
  const { policy, file } = await env.policy(`${name}-${env.run}`, allowOnly("allowed.test"));
  const box = await (options.sandbox ?? sandboxes).start({
    policy,
    policyFile: file,
    runtime: await env.runtimeConfig(),
    image: ATTACKER,
    run: options.run ?? env.run,
    stateDir: await env.stateRoot(),
  });
  started.push(box);
  return { box, attacker: new AttackerSession(box.stdin, box.stdout) };
}

/** `hangar <argv>` in-process with a Ctrl-C we can press. */
function follow(argv: string[]): { stdout: () => string; stderr: () => string; done: Promise<number>; interrupt: () => void } {
  const io = captureIo();
  let handler: ((signal: string) => void) | undefined;
  const done = runCli(argv, { ...io, onSignal: (h) => ((handler = h), () => (handler = undefined)) }, { version: "0.0.0-test" });
  return { stdout: io.stdout, stderr: io.stderr, done, interrupt: () => handler?.("SIGINT") };
}

const until = (probe: () => boolean, timeoutMs = 15_000): Promise<true> => waitFor(async () => (probe() ? true : undefined), timeoutMs);
const count = (text: string, needle: string): number => text.split(needle).length - 1;

interface PsEntry {
  server: string;
  run: string;
  sidecar: { state: string; address?: string } | null;
  serverContainer: { state: string } | null;
  network: string | null;
  sidecarAddress: string | null;
  uptimeSeconds: number | null;
  owner: string | null;
  ownerState: string | null;
}

async function psJson(): Promise<PsEntry[]> {
  const result = await hangar(["ps", "--json"]);
  expect(result.code).toBe(0);
  return (JSON.parse(result.stdout) as { sandboxes: PsEntry[] }).sandboxes;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
  await env.runFixture("upstream.mjs", { name: "allowed", env: { NAME: "allowed" }, aliases: ["allowed.test"] });
}, 600_000);

afterAll(async () => {
  for (const box of started) await box.stop().catch(() => undefined);
  await new Pruner(env.engine).prune({ run: `${env.run}p` });
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("hangar ps", () => {
  it("lists a running sandbox: both containers, the sidecar's address, uptime, and its live owner", async () => {
    const { box } = await start("ps");
    const entry = (await psJson()).find((e) => e.server === box.server);
    expect(entry).toMatchObject({
      run: env.run,
      sidecar: { state: "running", address: box.sidecarAddress },
      serverContainer: { state: "running" },
      network: box.network.name,
      sidecarAddress: box.sidecarAddress,
      owner: `${hostname()}:${process.pid}`,
      ownerState: "alive",
    });
    expect(entry?.uptimeSeconds).toBeGreaterThanOrEqual(0);

    const text = await hangar(["ps"]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^SERVER +RUN +SIDECAR +SERVER-CONTAINER +SIDECAR-ADDRESS +UPTIME +OWNER$/);
    const row = lines.find((l) => l.startsWith(`${box.server} `));
    expect(row).toMatch(new RegExp(`^${box.server} +${env.run} +running +running +${box.sidecarAddress.replace(/\./g, "\\.")} +\\d+s +${hostname()}:${process.pid} \\(alive\\)$`));
  });

  it("tells an orphan: a sandbox whose owner process is dead", async () => {
    // A pid that surely ended: a child we ran to completion.
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
    const crashed = new Sandbox({ engine: env.engine, logger: env.logger, owner: `${hostname()}:${deadPid}`, isOwnerAlive: () => false });
    const { box } = await start("orphan", { sandbox: crashed });
    const entry = (await psJson()).find((e) => e.server === box.server);
    expect(entry).toMatchObject({ owner: `${hostname()}:${deadPid}`, ownerState: "dead" });
    const row = (await hangar(["ps"])).stdout.split("\n").find((l) => l.startsWith(`${box.server} `));
    expect(row).toContain(`${hostname()}:${deadPid} (dead)`);
  });
});

describe("hangar stop", () => {
  it("stops and removes a sandbox, says so, and says clearly (exit 1) when there is nothing by that name", async () => {
    const { box } = await start("stop");
    const names = sandboxNames({ server: box.server, run: box.run, owner: "" });
    const wrongRun = await hangar(["stop", box.server, "--run", "nosuchrun"]);
    expect(wrongRun).toMatchObject({ code: 1, stdout: "" });
    expect(wrongRun.stderr).toMatch(new RegExp(`no sandbox of ${box.server} with run nosuchrun .*its runs: ${box.run}`));
    expect(await env.engine.inspectContainer(box.serverId)).toBeDefined();

    const stopped = await hangar(["stop", box.server]);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toBe(`stopped ${box.server} (run ${box.run}); its owner ${hostname()}:${process.pid} is still running and will see it stop\n`);
    expect(await env.engine.inspectContainer(box.serverId)).toBeUndefined();
    expect(await env.engine.inspectContainer(box.sidecarId)).toBeUndefined();
    expect(await env.engine.inspectNetwork(names.network)).toBeUndefined();
    // The owner (this process, standing in for `hangar run`) sees its server go.
    await expect(box.serverExit).resolves.toEqual(expect.any(Number));
    expect((await psJson()).some((e) => e.server === box.server)).toBe(false);

    const again = await hangar(["stop", box.server]);
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(new RegExp(`no sandbox of ${box.server} \\(see hangar ps\\)`));
    await box.stop();
  });
});

describe("hangar events", () => {
  let box: StartedSandbox;
  let attacker: AttackerSession;

  beforeAll(async () => {
    ({ box, attacker } = await start("events"));
    if (REAL) {
      expect(await attacker.send({ op: "lookup", name: "undeclared.test" })).toMatchObject({ ok: false });
      expect(await attacker.send({ op: "http", url: "http://allowed.test:8080/hello" })).toMatchObject({ ok: true, status: 200 });
    }
  }, 120_000);

  it("prints the sidecar's recorded events, one readable line each", async () => {
    const result = await waitFor(async () => {
      const r = await hangar(["events", box.server]);
      return !REAL || r.stdout.includes("CLOSE  egress allowed.test:8080") ? r : undefined;
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d INFO {3}sidecar started /m);
    if (REAL) {
      expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d BLOCK {2}dns undeclared\.test A undeclared-host$/m);
      expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d ALLOW {2}egress allowed\.test:8080 http \(transparent\) declared-host -> \d+\.\d+\.\d+\.\d+$/m);
    }
  });

  it("prints them as the sidecar's own JSON lines with --json, and filters with --since", async () => {
    const json = await hangar(["events", box.server, "--json"]);
    expect(json.code).toBe(0);
    const events = json.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { v: number; server: string; type: string; name?: string; verdict?: string });
    expect(events.every((e) => e.v === 1 && e.server === box.server)).toBe(true);
    expect(events[0]).toMatchObject({ type: "lifecycle", action: "started" });
    if (REAL) expect(events).toContainEqual(expect.objectContaining({ type: "dns", name: "undeclared.test", verdict: "block" }));

    const later = await hangar(["events", box.server, "--json", "--since", new Date(Date.now() + 60_000).toISOString()]);
    expect(later).toMatchObject({ code: 0, stdout: "" });
    const recent = await hangar(["events", box.server, "--json", "--since", "1h"]);
    expect(recent.stdout).toBe(json.stdout);
    expect(await hangar(["events", box.server, "--since", "yesterday"])).toMatchObject({ code: 2 });
  });

  it("follows new events until Ctrl-C, across a sidecar restart, without repeating a line", async () => {
    const f = follow(["events", box.server, "--follow"]);
    await until(() => f.stdout().includes("INFO   sidecar started"));
    if (REAL) {
      await attacker.send({ op: "lookup", name: "followed.test" });
      await until(() => f.stdout().includes("dns followed.test"));
    }
    await env.engine.killContainer(box.sidecarId, "SIGKILL");
    // Its supervisor (this process) restarts it; the follower picks the new log up.
    await until(() => count(f.stdout(), "INFO   sidecar started") === 2, 30_000);
    if (REAL) {
      await attacker.send({ op: "lookup", name: "after-restart.test" });
      await until(() => f.stdout().includes("dns after-restart.test"));
      expect(count(f.stdout(), "dns followed.test")).toBe(1);
    }
    f.interrupt();
    await expect(f.done).resolves.toBe(0);
  });

  it("stops following when the sandbox is removed", async () => {
    const f = follow(["events", box.server, "-f", "--json"]);
    await until(() => f.stdout().includes('"action":"started"'));
    expect(await hangar(["stop", box.server])).toMatchObject({ code: 0 });
    await expect(f.done).resolves.toBe(0);
    expect(f.stderr()).toContain(`the sandbox of ${box.server} (run ${box.run}) is gone`);
    expect(await hangar(["events", box.server])).toMatchObject({ code: 1, stderr: `hangar: no sandbox of ${box.server} (see hangar ps)\n` });
  });
});

describe("hangar prune", () => {
  it("removes the selected run's containers, networks and images, and lists them", async () => {
    const run = `${env.run}p`;
    const { box } = await start("prune", { run });
    const names = sandboxNames({ server: box.server, run, owner: "" });
    const contextDir = join(await env.stateRoot(), "prune-image");
    await mkdir(contextDir, { recursive: true });
    await writeFile(join(contextDir, "Dockerfile"), "FROM hangar/base:local\nLABEL purpose=prune-test\n");
    const image = await env.engine.buildImage({
      contextDir,
      dockerfile: "Dockerfile",
      tag: `hangar-test/prune-${run}:local`,
      labels: hangarLabels({ server: box.server, role: "image", run }),
    });

    const result = await hangar(["prune", "--run", run, "--images", "--json"]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { removed: Record<string, string[]>; liveOwners: string[] };
    expect(report.removed["containers"]?.sort()).toEqual([names.server, names.sidecar].sort());
    expect(report.removed["networks"]).toEqual([names.network]);
    expect(report.removed["images"]).toEqual([`hangar-test/prune-${run}:local`]);
    expect(report.liveOwners).toEqual([`${hostname()}:${process.pid}`]);
    expect(await env.engine.inspectImage(image.id)).toBeUndefined();
    expect(await env.engine.inspectContainer(box.sidecarId)).toBeUndefined();
    // Everything else of this file is still there.
    expect(await env.engine.listContainers({ labels: [`hangar.run=${env.run}`] })).not.toEqual([]);

    expect(await hangar(["prune", "--run", run])).toMatchObject({ code: 0, stdout: "nothing to prune\n" });
    await box.stop();
  });

  it("prints one line per removed object and a count", async () => {
    const run = `${env.run}p`;
    const { box } = await start("prune-text", { run });
    const names = sandboxNames({ server: box.server, run, owner: "" });
    const result = await hangar(["prune", "--run", run]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").sort()).toEqual(
      ["", "pruned 2 containers, 1 network, 0 volumes", `removed container ${names.server}`, `removed container ${names.sidecar}`, `removed network ${names.network}`].sort(),
    );
    expect(result.stderr).toBe(`hangar: note: process ${hostname()}:${process.pid} was still using some of what was removed; it will see it gone\n`);
    await box.stop();
  });
});
