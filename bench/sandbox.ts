/**
 * Sandbox-level measurements against real Docker, side by side in one run:
 *
 * - cold start: the median time from nothing (no sandbox running, images built) to the first
 *   `tools/list` answer through the real `hangar run` of policies/everything.yaml (renamed),
 *   spawned by the MCP SDK's stdio client as Claude Desktop would;
 * - sidecar idle RSS: the sidecar's node process (VmRSS) and its container's memory as
 *   `docker stats` shows it, after a few idle seconds;
 * - the transparent path's per-request overhead: one load client (bench/sandbox-load-client.mjs)
 *   runs in a plain container on the egress network against an upstream of ours (direct),
 *   then as the server of a sandbox, where its Node http requests reach the same upstream
 *   through the sidecar. Same image, same limits, same upstream; rounds alternate.
 *
 * Everything it starts carries Hangar labels with one run id and is removed at the end.
 *
 * Each cold start's phases are printed: the client's view (spawn to "is running", to the
 * `initialize` answer, to the `tools/list` answer) and `hangar run --verbose`'s own account
 * (CLI load, policy, Docker, images, then the sandbox's steps), with the median of each.
 *
 *   node --import tsx bench/sandbox.ts [--runs 5] [--seconds 5] [--rounds 3] [--concurrency 8]
 *                                      [--idle 5] [--cli auto|dist|tsx] [--only cold] [--json out.json]
 */
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Dockerode from "dockerode";
import { parse, stringify } from "yaml";
import { PolicySchema } from "../src/core/policy/policy-schema.js";
import type { ContainerEngine, ImageInfo, NetworkInfo } from "../src/docker/container-engine.js";
import { DockerContainerEngine } from "../src/docker/docker-container-engine.js";
import { hangarLabels } from "../src/docker/labels.js";
import { BaseImageBuilder } from "../src/images/base-image-builder.js";
import { hangarPackageRoot } from "../src/images/package-root.js";
import { silentLogger } from "../src/log.js";
import { Pruner } from "../src/runtime/pruner.js";
import { toLimits } from "../src/runtime/resource-limits.js";
import { RuntimeConfigSchema } from "../src/runtime/runtime-config.js";
import { egressNetworkSpec, SANDBOX_USER } from "../src/runtime/sandbox-specs.js";
import { Sandbox } from "../src/runtime/sandbox.js";
import { AttackerSession as JsonLineSession, ensureFixtureImage, FIXTURES_IMAGE } from "../test/docker/support/docker-test-env.js";
import { withFileLock } from "../test/docker/support/file-lock.js";
import { ensureCliSidecarImage, hangarCliCommand, writeRunConfig, type HangarCliCommand } from "../test/docker/support/hangar-cli.js";
import { HangarRunSession } from "../test/docker/support/hangar-run-session.js";
import { TestResolver } from "../test/docker/support/test-resolver.js";
import { cpuMsOf } from "./cpu.js";
import { median } from "./load.js";

const ROOT = hangarPackageRoot();
const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "8" },
    idle: { type: "string", default: "5" },
    json: { type: "string" },
    /** auto: dist when it is fresh, else src through tsx (which adds its own start-up time). */
    cli: { type: "string", default: "auto" },
    /** cold: only the cold start (no memory or load measurements). */
    only: { type: "string" },
  },
});
const RUNS = Math.max(1, Number(flags.runs));
const LOAD_MS = Math.max(1, Number(flags.seconds)) * 1000;
const ROUNDS = Math.max(1, Number(flags.rounds));
const CONCURRENCY = Math.max(1, Number(flags.concurrency));
const IDLE_MS = Math.max(0, Number(flags.idle)) * 1000;

const UPSTREAM_HOST = "upstream.bench.test";
const UPSTREAM_PORT = 8080;
/** The load client's limits, in the sandbox (policy) and in the direct container alike. */
const CLIENT_RESOURCES = { memory: "256m", cpus: 1, pids: 64 };

interface Bench {
  readonly docker: Dockerode;
  readonly engine: ContainerEngine;
  readonly run: string;
  readonly dir: string;
  readonly egress: NetworkInfo;
  readonly fixtures: ImageInfo;
  readonly sidecarImage: string;
  readonly labels: Record<string, string>;
  /** The sidecars' only upstream resolver (writeRunConfig finds it too): never the engine's, which forwards off this machine. */
  readonly resolver: TestResolver;
}

interface LoadResult {
  readonly requests: number;
  readonly warmupRequests: number;
  /** Through the sandbox: the sidecar's CPU time per request, warm-up included (µs). */
  readonly sidecarCpuUsPerRequest?: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

interface MemorySample {
  /** The sidecar's node process, when /proc shows it (Linux, same pid namespace). */
  readonly process?: ProcessRss;
  /** What `docker stats` shows: cgroup usage minus inactive file cache. */
  readonly dockerStatsMb: number;
  /** Anonymous memory of the cgroup (cgroup v1 total_rss, v2 anon). */
  readonly cgroupRssMb?: number;
}

const log = (text: string): void => void process.stderr.write(`${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number): number => bytes / 1024 / 1024;

async function setUp(): Promise<Bench> {
  const docker = new Dockerode();
  const engine = new DockerContainerEngine(docker);
  await engine.ping();
  const run = `b${randomBytes(3).toString("hex")}`;
  await mkdir(join(ROOT, ".stage"), { recursive: true });
  log("images: base and fixtures (built when missing), sidecar from dist (as hangar run ships it)");
  const fixtures = await withFileLock(join(ROOT, ".stage/test-images.lock"), async () => {
    await new BaseImageBuilder(engine, ROOT).ensure();
    return ensureFixtureImage(engine, "Dockerfile", FIXTURES_IMAGE);
  });
  const sidecarImage = await ensureCliSidecarImage(engine);
  const labels = hangarLabels({ server: "bench", role: "test", run });
  const egress = await engine.createNetwork({ ...egressNetworkSpec(`hangar-egress-${run}`), labels });
  const dir = await mkdtemp(join(tmpdir(), `hangar-bench-${run}-`));
  const resolver = await TestResolver.start(engine, { name: `hangar-${run}-upstream-dns`, image: fixtures.id, network: egress, labels, dir: join(dir, "resolver") });
  return { docker, engine, run, dir, egress, fixtures, sidecarImage, labels, resolver };
}

async function tearDown(b: Bench): Promise<void> {
  await new Pruner(b.engine).prune({ run: b.run });
  // By name: had it ever been left empty, hangar run would have removed it, and the next run recreated it.
  await b.engine.removeNetwork(b.egress.name);
  await rm(b.dir, { recursive: true, force: true });
}

// ---- cold start -------------------------------------------------------------------------

function cliCommand(): HangarCliCommand {
  const auto = hangarCliCommand();
  if (flags.cli === "auto" || flags.cli === auto.from) return auto;
  if (flags.cli === "dist") return { command: process.execPath, args: [join(ROOT, "dist/cli/main.js")], from: "dist" };
  if (flags.cli === "tsx") return { command: process.execPath, args: ["--import", "tsx", join(ROOT, "src/cli/main.ts")], from: "tsx" };
  throw new Error(`--cli ${flags.cli ?? ""}: expected auto, dist or tsx`);
}

interface ColdStartSample {
  /** Spawn to the first tools/list answer. */
  readonly toolsListMs: number;
  /** Spawn to the `initialize` answer. */
  readonly initializeMs: number;
  /** `hangar run --verbose`'s "start phases" line: its own account, in ms per phase. */
  readonly phases: Readonly<Record<string, number>>;
  /** Spawn to the CLI's "is running" line (images checked, sidecar ready, server started). */
  readonly sandboxUpMs: number;
  /** stdin EOF to the CLI's exit, everything removed. */
  readonly teardownMs: number;
}

async function coldStart(b: Bench): Promise<{ samples: ColdStartSample[]; cli: string }> {
  const config = await writeRunConfig(join(b.dir, "hangar.yaml"), { egress: b.egress, sidecarImage: b.sidecarImage });
  // policies/everything.yaml renamed: one host runs one sandbox per server name, and the demo or
  // the run-everything test may hold "everything". Fixed, so its image is built once and reused.
  const reference = parse(await readFile(join(ROOT, "policies/everything.yaml"), "utf8")) as Record<string, unknown>;
  const policy = join(b.dir, "everything-bench.yaml");
  await writeFile(policy, stringify({ ...reference, name: "everything-bench" }));
  const cli = cliCommand();
  const once = async (): Promise<ColdStartSample> => {
    const t0 = performance.now();
    const session = await HangarRunSession.start({ engine: b.engine, policy, config, cli, env: { HANGAR_VERBOSE: "1" } });
    try {
      const initialized = performance.now();
      await session.client.listTools();
      const t1 = performance.now();
      const up = await session.sandbox();
      session.endStdin();
      const t2 = performance.now();
      await session.waitForExit(30_000);
      const phases = parsePhases(session.stderrLines);
      return { toolsListMs: t1 - t0, initializeMs: initialized - t0, sandboxUpMs: up.at - t0, teardownMs: performance.now() - t2, phases };
    } finally {
      await session[Symbol.asyncDispose]();
    }
  };
  log(`cold start: a warm-up run of hangar run (CLI from ${cli.from}; builds whatever image is missing), then ${RUNS} measured`);
  await once();
  const samples: ColdStartSample[] = [];
  for (let i = 0; i < RUNS; i++) {
    const sample = await once();
    log(`  run ${i + 1}: tools/list after ${sample.toolsListMs.toFixed(0)} ms (sandbox up at ${sample.sandboxUpMs.toFixed(0)} ms), teardown ${sample.teardownMs.toFixed(0)} ms`);
    log(`    phases: ${describePhases(sample)}`);
    samples.push(sample);
  }
  return { samples, cli: cli.from };
}

const PHASES_LINE = /^hangar: start phases: (.*)$/;

/** "cli 120 ms, policy 10 ms, ..." from the CLI's --verbose line; empty from a CLI without it. */
function parsePhases(lines: readonly string[]): Record<string, number> {
  const text = lines.map((l) => PHASES_LINE.exec(l)?.[1]).find((t) => t !== undefined);
  if (text === undefined) return {};
  return Object.fromEntries(text.split(", ").flatMap((part) => {
    const m = /^(\S+) (\d+) ms$/.exec(part);
    return m ? [[m[1]!, Number(m[2])]] : [];
  }));
}

/** The client's view (spawn to running, to initialize, to tools/list), then the CLI's own phases. */
function clientPhases(s: ColdStartSample): Record<string, number> {
  return { "client:running": s.sandboxUpMs, "client:initialize": s.initializeMs, "client:tools/list": s.toolsListMs, ...s.phases };
}

function describePhases(s: ColdStartSample): string {
  return Object.entries(clientPhases(s)).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
}

/** The median of each phase over the samples, in first-seen order. */
function phaseMedians(samples: readonly ColdStartSample[]): Array<[string, number]> {
  const names = [...new Set(samples.flatMap((s) => Object.keys(clientPhases(s))))];
  return names.map((name) => [name, median(samples.flatMap((s) => { const v = clientPhases(s)[name]; return v === undefined ? [] : [v]; }))]);
}

// ---- sidecar memory ---------------------------------------------------------------------

interface ProcessRss {
  readonly vmRssMb: number;
  /** Anonymous pages (heap, stacks): what the process itself allocated. */
  readonly anonMb: number;
  /** File-backed pages, mostly the node binary's text, shared with every node process on the host. */
  readonly fileMb: number;
}

/** The host pid of a container's node process, when /proc shows it (Linux, same pid namespace). */
async function nodePidOf(b: Bench, containerId: string): Promise<number | undefined> {
  const pid = (await b.engine.inspectContainer(containerId))?.pid;
  if (pid === undefined) return undefined;
  // With init: true the container's first process is docker-init; node is its child.
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  const child = Number(children.trim().split(/\s+/)[0]);
  return Number.isInteger(child) && child > 0 ? child : undefined;
}

async function rssOf(child: number): Promise<ProcessRss | undefined> {
  const status = await readFile(`/proc/${child}/status`, "utf8").catch(() => "");
  const field = (name: string): number | undefined => {
    const kb = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  };
  const vmRssMb = field("VmRSS");
  if (vmRssMb === undefined) return undefined;
  return { vmRssMb, anonMb: field("RssAnon") ?? NaN, fileMb: field("RssFile") ?? NaN };
}

async function sidecarMemory(b: Bench, containerId: string): Promise<MemorySample> {
  const stats = (await b.docker.getContainer(containerId).stats({ stream: false })) as unknown as {
    memory_stats: { usage?: number; stats?: Record<string, number> };
  };
  const raw = stats.memory_stats.stats ?? {};
  const usage = stats.memory_stats.usage ?? 0;
  const inactiveFile = raw["total_inactive_file"] ?? raw["inactive_file"] ?? 0;
  const rss = raw["total_rss"] ?? raw["anon"];
  const pid = await nodePidOf(b, containerId);
  const rssOfNode = pid !== undefined ? await rssOf(pid) : undefined;
  return {
    dockerStatsMb: mb(usage - inactiveFile),
    ...(rss !== undefined ? { cgroupRssMb: mb(rss) } : {}),
    ...(rssOfNode !== undefined ? { process: rssOfNode } : {}),
  };
}

// ---- transparent path overhead ----------------------------------------------------------

interface Overhead {
  readonly idle: MemorySample;
  readonly afterLoad: MemorySample;
  /** Per round: [direct, sandbox]. */
  readonly throughput: Array<[LoadResult, LoadResult]>;
  readonly latency: Array<[LoadResult, LoadResult]>;
}

async function startUpstream(b: Bench): Promise<string> {
  const id = await b.engine.createContainer({
    name: `hangar-${b.run}-upstream`,
    image: b.fixtures.id,
    labels: b.labels,
    cmd: ["/fixtures/upstream.mjs"],
    env: { NAME: "bench", PORT: String(UPSTREAM_PORT) },
    user: SANDBOX_USER,
    init: true,
    // The Docker alias is for the direct client, a plain container on the egress network; sidecars ask our resolver.
    endpoint: { network: b.egress.name, aliases: [UPSTREAM_HOST] },
  });
  await b.engine.startContainer(id);
  const ip = (await b.engine.inspectContainer(id))?.addresses[b.egress.name];
  if (ip === undefined) throw new Error("the upstream has no address on the egress network");
  b.resolver.register([UPSTREAM_HOST], ip);
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${ip}:${UPSTREAM_PORT}/__count`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (ok) return ip;
    if (i > 100) throw new Error("the upstream did not come up");
    await sleep(100);
  }
}

async function overhead(b: Bench): Promise<Overhead> {
  // Only the client is mounted, read-only, into both containers.
  const clientDir = join(b.dir, "client");
  await mkdir(clientDir);
  await chmod(clientDir, 0o755);
  await copyFile(join(ROOT, "bench/sandbox-load-client.mjs"), join(clientDir, "load-client.mjs"));
  await chmod(join(clientDir, "load-client.mjs"), 0o644);
  const mount = { source: clientDir, target: "/bench", readOnly: true };
  const entrypoint = ["node", "/bench/load-client.mjs"];

  const directId = await b.engine.createContainer({
    name: `hangar-${b.run}-direct-client`,
    image: b.fixtures.id,
    labels: b.labels,
    entrypoint,
    user: SANDBOX_USER,
    init: true,
    capDrop: ["ALL"],
    securityOpt: ["no-new-privileges"],
    readonlyRootfs: true,
    limits: toLimits(CLIENT_RESOURCES),
    mounts: [mount],
    endpoint: { network: b.egress.name },
    openStdin: true,
  });
  const directIo = await b.engine.attach(directId, { stdin: true });
  directIo.stderr.resume();
  await b.engine.startContainer(directId);
  const direct = new JsonLineSession(directIo.stdin!, directIo.stdout);

  const policyInput = {
    version: 1 as const,
    name: "bench-load",
    server: { image: { ref: FIXTURES_IMAGE }, command: entrypoint, mounts: [mount], resources: CLIENT_RESOURCES },
    egress: { mode: "enforcing" as const, allow: [{ host: UPSTREAM_HOST, ports: [UPSTREAM_PORT] }] },
  };
  const policyFile = join(b.dir, "bench-load.yaml");
  await writeFile(policyFile, stringify(policyInput));
  const runtime = RuntimeConfigSchema.parse({
    runtime: { egressNetwork: b.egress.name, trustedUpstreamRanges: b.egress.subnets.map((s) => s.subnet), upstreamResolvers: b.resolver.upstreamResolvers, sidecar: { image: b.sidecarImage } },
  });
  const box = await new Sandbox({ engine: b.engine, logger: silentLogger() }).start({
    policy: PolicySchema.parse(policyInput),
    policyFile,
    runtime,
    image: { id: b.fixtures.id, entrypoint },
    run: b.run,
    stateDir: b.dir,
  });
  try {
    box.stderr.resume();
    const sandboxed = new JsonLineSession(box.stdin, box.stdout);
    log(`sidecar idle RSS: idle for ${IDLE_MS / 1000} s after start`);
    await sleep(IDLE_MS);
    const idle = await sidecarMemory(b, box.sidecarId);

    const url = `http://${UPSTREAM_HOST}:${UPSTREAM_PORT}/`;
    const sidecarPid = await nodePidOf(b, box.sidecarId);
    const measure = async (session: JsonLineSession, concurrency: number): Promise<LoadResult> => {
      const cpuBefore = session === sandboxed && sidecarPid !== undefined ? cpuMsOf(sidecarPid) : undefined;
      const result = (await session.send({ url, concurrency, durationMs: LOAD_MS, warmupMs: 1000 })) as unknown as LoadResult;
      if (result.requests === 0) throw new Error(`no request succeeded (${result.errors} errors, first: ${result.firstError ?? "?"})`);
      const cpuAfter = cpuBefore !== undefined ? cpuMsOf(sidecarPid!) : undefined;
      if (cpuBefore === undefined || cpuAfter === undefined) return result;
      return { ...result, sidecarCpuUsPerRequest: ((cpuAfter - cpuBefore) * 1000) / (result.requests + result.warmupRequests) };
    };
    const throughput: Array<[LoadResult, LoadResult]> = [];
    const latency: Array<[LoadResult, LoadResult]> = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternating keeps a slow moment of the machine from landing on one side only.
      const first = round % 2 === 1;
      const pair = async (concurrency: number): Promise<[LoadResult, LoadResult]> => {
        if (first) {
          const d = await measure(direct, concurrency);
          return [d, await measure(sandboxed, concurrency)];
        }
        const s = await measure(sandboxed, concurrency);
        return [await measure(direct, concurrency), s];
      };
      const t = await pair(CONCURRENCY);
      const l = await pair(1);
      log(
        `  round ${round}: c=${CONCURRENCY} ${t[0].rps.toFixed(0)} vs ${t[1].rps.toFixed(0)} req/s; ` +
          `c=1 p50 ${l[0].p50Ms.toFixed(3)} vs ${l[1].p50Ms.toFixed(3)} ms, p99 ${l[0].p99Ms.toFixed(3)} vs ${l[1].p99Ms.toFixed(3)} ms (direct vs sandbox)`,
      );
      throughput.push(t);
      latency.push(l);
    }
    const afterLoad = await sidecarMemory(b, box.sidecarId);
    return { idle, afterLoad, throughput, latency };
  } finally {
    directIo.stdin?.end();
    directIo.close();
    await b.engine.removeContainer(directId);
    await box.stop();
  }
}

// ---- report -----------------------------------------------------------------------------

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n");
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits);
const signed = (n: number, digits = 0): string => `${n >= 0 ? "+" : ""}${n.toFixed(digits)}`;
const verdict = (ok: boolean): string => (ok ? "ok" : "MISSED");

async function main(): Promise<void> {
  const b = await setUp();
  const onSignal = (): void => {
    log("interrupted: cleaning up");
    void tearDown(b).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  try {
    // First: attached to the egress network, it keeps hangar run from removing the network as it exits.
    await startUpstream(b);
    const cold = await coldStart(b);
    console.log(`\ncold start phases (median of ${cold.samples.length}, ms; client: from spawn, the rest each its own duration):`);
    for (const [name, ms] of phaseMedians(cold.samples)) console.log(`  ${name.padEnd(24)} ${ms.toFixed(0).padStart(6)}`);
    if (flags.only === "cold") {
      const coldMedian = median(cold.samples.map((s) => s.toolsListMs));
      console.log(`cold start to first tools/list: median ${coldMedian.toFixed(0)} ms (target ≤ 1500 ms: ${verdict(coldMedian <= 1500)}), load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
      if (flags.json !== undefined) await writeFile(flags.json, JSON.stringify({ coldStart: cold, phaseMedians: Object.fromEntries(phaseMedians(cold.samples)), coldMedian }, null, 2));
      return;
    }
    const over = await overhead(b);

    const coldMedian = median(cold.samples.map((s) => s.toolsListMs));
    const upMedian = median(cold.samples.map((s) => s.sandboxUpMs));
    const teardownMedian = median(cold.samples.map((s) => s.teardownMs));
    const statsIdle = over.idle.dockerStatsMb;
    const nodeIdle = over.idle.process;
    const directRps = median(over.throughput.map(([d]) => d.rps));
    const boxRps = median(over.throughput.map(([, s]) => s.rps));
    const ratio = median(over.throughput.map(([d, s]) => s.rps / d.rps));
    const p50Direct = median(over.latency.map(([d]) => d.p50Ms));
    const p50Box = median(over.latency.map(([, s]) => s.p50Ms));
    const p99Direct = median(over.latency.map(([d]) => d.p99Ms));
    const p99Box = median(over.latency.map(([, s]) => s.p99Ms));
    const addedP50 = median(over.latency.map(([d, s]) => s.p50Ms - d.p50Ms));
    const addedP99 = median(over.latency.map(([d, s]) => s.p99Ms - d.p99Ms));
    const cpuPerRequest = (pairs: Array<[LoadResult, LoadResult]>): number => median(pairs.flatMap(([, s]) => (s.sidecarCpuUsPerRequest !== undefined ? [s.sidecarCpuUsPerRequest] : [])));
    const cpuC = cpuPerRequest(over.throughput);
    const cpu1 = cpuPerRequest(over.latency);
    const errors = over.throughput.concat(over.latency).reduce((n, [d, s]) => n + d.errors + s.errors, 0);

    const sidecar = RuntimeConfigSchema.parse({}).runtime.sidecar;
    console.log(
      `\nHangar sandbox bench: ${cpus().length} CPUs, node ${process.version}, hangar run from ${cold.cli}, sidecar ${b.sidecarImage} ` +
        `(limits ${sidecar.cpus} CPU, ${sidecar.memory}), load client ${CLIENT_RESOURCES.cpus} CPU in both containers; ` +
        `load average ${loadavg().map((l) => l.toFixed(1)).join(" ")} (wall-clock figures move with it)\n`,
    );
    console.log(
      table([
        ["measurement", "direct", "through hangar", "ratio / added", "target", ""],
        [`cold start to first tools/list (median of ${cold.samples.length})`, "", `${fmt(coldMedian)} ms`, "", "≤ 1500 ms", verdict(coldMedian <= 1500)],
        ["  of which: to sandbox up / teardown after EOF", "", `${fmt(upMedian)} / ${fmt(teardownMedian)} ms`, "", "", ""],
        [`sidecar idle memory, docker stats (${IDLE_MS / 1000} s idle)`, "", `${fmt(statsIdle, 1)} MB`, "", "≤ 45 MB", verdict(statsIdle <= 45)],
        ...(nodeIdle !== undefined
          ? [[`  VmRSS of its node process (anon + file)`, "", `${fmt(nodeIdle.vmRssMb, 1)} MB (${fmt(nodeIdle.anonMb, 1)} + ${fmt(nodeIdle.fileMb, 1)})`, "", "≤ 45 MB", verdict(nodeIdle.vmRssMb <= 45)]]
          : []),
        ["  after the load runs: docker stats / VmRSS", "", `${fmt(over.afterLoad.dockerStatsMb, 1)} / ${over.afterLoad.process !== undefined ? fmt(over.afterLoad.process.vmRssMb, 1) : "-"} MB`, "", "", ""],
        [`transparent HTTP keep-alive, c=${CONCURRENCY} (median of ${ROUNDS})`, `${fmt(directRps)} req/s`, `${fmt(boxRps)} req/s`, `${fmt(ratio * 100)} %`, "≥ 70 %", verdict(ratio >= 0.7)],
        ["transparent HTTP keep-alive, c=1: p50", `${fmt(p50Direct, 3)} ms`, `${fmt(p50Box, 3)} ms`, `${signed(addedP50, 3)} ms`, "", ""],
        ["transparent HTTP keep-alive, c=1: p99", `${fmt(p99Direct, 3)} ms`, `${fmt(p99Box, 3)} ms`, `${signed(addedP99, 3)} ms`, "≤ +1 ms", verdict(addedP99 <= 1)],
        [`sidecar CPU per request, c=${CONCURRENCY} / c=1 (load-independent)`, "", `${fmt(cpuC)} / ${fmt(cpu1)} µs`, `${fmt((sidecar.cpus * 1e6) / cpuC)} req/s max at ${sidecar.cpus} CPU`, "", ""],
      ]),
    );
    if (errors > 0) console.log(`\n${errors} request(s) failed during the load runs`);
    if (flags.json !== undefined) {
      await writeFile(
        flags.json,
        JSON.stringify({ coldStart: cold, sidecarMemory: { idle: over.idle, afterLoad: over.afterLoad }, transparent: { throughput: over.throughput, latency: over.latency }, summary: { sidecarCpuUsPerRequest: { [`c${CONCURRENCY}`]: cpuC, c1: cpu1 }, coldMedian, sidecarIdleMb: statsIdle, sidecarIdleVmRssMb: nodeIdle?.vmRssMb, ratio, addedP50, addedP99 } }, null, 2),
      );
    }
  } finally {
    process.off("SIGINT", onSignal);
    await tearDown(b);
  }
}

await main().catch((err: Error) => {
  console.error(`bench/sandbox: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
