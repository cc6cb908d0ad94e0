/**
 * runc against gVisor (runsc) for the server container, side by side in one run, on real Docker:
 *
 * - cold start: spawn of `hangar run` (policies/everything.yaml renamed, hangar.yaml's
 *   runtime.isolation set) to its first `tools/list` answer, the MCP SDK's stdio client driving
 *   it; runs alternate between the two isolations;
 * - the transparent path: one load client (bench/isolation-load-client.mjs) runs as the server
 *   of two sandboxes, one per isolation, and makes keep-alive requests to an upstream of ours
 *   by name: plain HTTP, then HTTPS (TLS passed through by SNI, not inspected). The sidecar is
 *   on runc in both; rounds alternate. Reported: requests/s, p50, and the sidecar's CPU per
 *   request (independent of how loaded the shared machine is).
 *
 * Needs the engine's runsc runtime (scripts/ensure-docker.sh registers it). Everything it
 * starts carries Hangar labels with one run id and is removed at the end.
 *
 *   node --import tsx bench/isolation.ts [--runs 3] [--seconds 3] [--rounds 2] [--concurrency 4] [--json out.json]
 */
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Dockerode from "dockerode";
import { parse, stringify } from "yaml";
import { ISOLATIONS, PolicySchema, type Isolation } from "../src/core/policy/policy-schema.js";
import type { ContainerEngine, ImageInfo, NetworkInfo } from "../src/docker/container-engine.js";
import { DockerContainerEngine } from "../src/docker/docker-container-engine.js";
import { GVISOR_OCI_RUNTIME } from "../src/docker/isolation.js";
import { hangarLabels } from "../src/docker/labels.js";
import { BaseImageBuilder } from "../src/images/base-image-builder.js";
import { hangarPackageRoot } from "../src/images/package-root.js";
import { silentLogger } from "../src/log.js";
import { Pruner } from "../src/runtime/pruner.js";
import { RuntimeConfigSchema } from "../src/runtime/runtime-config.js";
import { egressNetworkSpec, SANDBOX_USER } from "../src/runtime/sandbox-specs.js";
import { Sandbox } from "../src/runtime/sandbox.js";
import type { StartedSandbox } from "../src/runtime/started-sandbox.js";
import { AttackerSession as JsonLineSession, ensureFixtureImage, FIXTURES_IMAGE } from "../test/docker/support/docker-test-env.js";
import { withFileLock } from "../test/docker/support/file-lock.js";
import { ensureCliSidecarImage, writeRunConfig } from "../test/docker/support/hangar-cli.js";
import { HangarRunSession } from "../test/docker/support/hangar-run-session.js";
import { TestResolver } from "../test/docker/support/test-resolver.js";
import { makeTestPki } from "../test/support/tls.js";
import { cpuMsOf } from "./cpu.js";
import { median } from "./load.js";

const ROOT = hangarPackageRoot();
const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    concurrency: { type: "string", default: "4" },
    json: { type: "string" },
  },
});
const RUNS = Math.max(1, Number(flags.runs));
const LOAD_MS = Math.max(1, Number(flags.seconds)) * 1000;
const ROUNDS = Math.max(1, Number(flags.rounds));
const CONCURRENCY = Math.max(1, Number(flags.concurrency));
/** One name per upstream: a name the sidecar resolves to two containers could be dialled on the wrong one's port. */
const HTTP_HOST = "plain.bench.test";
const TLS_HOST = "tls.bench.test";
// pids 128 (the policy default): under gVisor the limit also counts the Sentry's own threads, and 64 kills it at start.
const CLIENT_RESOURCES = { memory: "256m", cpus: 1, pids: 128 };

const log = (text: string): void => void process.stderr.write(`${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Bench {
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
  readonly errors: number;
  readonly firstError?: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly sidecarCpuUsPerRequest?: number;
}

async function setUp(): Promise<Bench> {
  const engine = new DockerContainerEngine(new Dockerode());
  await engine.ping();
  if (!(await engine.ociRuntimes()).includes(GVISOR_OCI_RUNTIME)) throw new Error(`the engine has no "${GVISOR_OCI_RUNTIME}" runtime: run scripts/ensure-docker.sh as root`);
  const run = `i${randomBytes(3).toString("hex")}`;
  await mkdir(join(ROOT, ".stage"), { recursive: true });
  const fixtures = await withFileLock(join(ROOT, ".stage/test-images.lock"), async () => {
    await new BaseImageBuilder(engine, ROOT).ensure();
    return ensureFixtureImage(engine, "Dockerfile", FIXTURES_IMAGE);
  });
  const sidecarImage = await ensureCliSidecarImage(engine);
  const labels = hangarLabels({ server: "bench", role: "test", run });
  const egress = await engine.createNetwork({ ...egressNetworkSpec(`hangar-egress-${run}`), labels });
  const dir = await mkdtemp(join(tmpdir(), `hangar-bench-${run}-`));
  await chmod(dir, 0o755);
  const resolver = await TestResolver.start(engine, { name: `hangar-${run}-upstream-dns`, image: fixtures.id, network: egress, labels, dir: join(dir, "resolver") });
  return { engine, run, dir, egress, fixtures, sidecarImage, labels, resolver };
}

async function tearDown(b: Bench): Promise<void> {
  await new Pruner(b.engine).prune({ run: b.run });
  await b.engine.removeNetwork(b.egress.name);
  await rm(b.dir, { recursive: true, force: true });
}

/** Our upstream on the egress network, by name: plain HTTP on 8080 and HTTPS on 443 (two containers). */
async function startUpstreams(b: Bench, pki: { cert: string; key: string }): Promise<void> {
  for (const [suffix, port, tls, alias] of [["http", 8080, false, HTTP_HOST], ["https", 443, true, TLS_HOST]] as const) {
    const id = await b.engine.createContainer({
      name: `hangar-${b.run}-upstream-${suffix}`,
      image: b.fixtures.id,
      labels: b.labels,
      cmd: ["/fixtures/upstream.mjs"],
      env: { NAME: "bench", PORT: String(port), ...(tls ? { TLS_CERT: pki.cert, TLS_KEY: pki.key } : {}) },
      user: SANDBOX_USER,
      init: true,
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
      endpoint: { network: b.egress.name },
    });
    await b.engine.startContainer(id);
    const ip = (await b.engine.inspectContainer(id))?.addresses[b.egress.name];
    if (ip === undefined) throw new Error(`upstream ${alias} has no address on the egress network`);
    b.resolver.register([alias], ip);
  }
  await sleep(1000);
}

async function coldStarts(b: Bench): Promise<Record<Isolation, number[]>> {
  const reference = parse(await readFile(join(ROOT, "policies/everything.yaml"), "utf8")) as Record<string, unknown>;
  const policy = join(b.dir, "everything-iso.yaml");
  await writeFile(policy, stringify({ ...reference, name: "everything-iso" }));
  const configs = Object.fromEntries(
    await Promise.all(ISOLATIONS.map(async (isolation) => [isolation, await writeRunConfig(join(b.dir, `hangar-${isolation}.yaml`), { egress: b.egress, sidecarImage: b.sidecarImage, isolation })])),
  ) as Record<Isolation, string>;
  const once = async (isolation: Isolation): Promise<number> => {
    const t0 = performance.now();
    const session = await HangarRunSession.start({ engine: b.engine, policy, config: configs[isolation] });
    try {
      await session.client.listTools();
      const ms = performance.now() - t0;
      session.endStdin();
      await session.waitForExit(30_000);
      return ms;
    } finally {
      await session[Symbol.asyncDispose]();
    }
  };
  log("cold start: one warm-up per isolation (builds the server image when missing), then alternating runs");
  for (const isolation of ISOLATIONS) await once(isolation);
  const out: Record<Isolation, number[]> = { runc: [], gvisor: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const isolation of i % 2 === 0 ? ISOLATIONS : [...ISOLATIONS].reverse()) {
      const ms = await once(isolation);
      out[isolation].push(ms);
      log(`  ${isolation}: tools/list after ${ms.toFixed(0)} ms`);
    }
  }
  return out;
}

async function sandboxFor(b: Bench, isolation: Isolation, clientDir: string): Promise<StartedSandbox> {
  const entrypoint = ["node", "/bench/load-client.mjs"];
  const mount = { source: clientDir, target: "/bench", readOnly: true };
  const input = {
    version: 1 as const,
    name: `bench-${isolation}`,
    server: { image: { ref: FIXTURES_IMAGE }, command: entrypoint, mounts: [mount], resources: CLIENT_RESOURCES, isolation },
    egress: { mode: "enforcing" as const, allow: [{ host: HTTP_HOST, ports: [8080] }, { host: TLS_HOST, ports: [443] }] },
  };
  const policyFile = join(b.dir, `bench-${isolation}.yaml`);
  await writeFile(policyFile, stringify(input));
  const runtime = RuntimeConfigSchema.parse({
    runtime: { egressNetwork: b.egress.name, trustedUpstreamRanges: b.egress.subnets.map((s) => s.subnet), upstreamResolvers: b.resolver.upstreamResolvers, sidecar: { image: b.sidecarImage } },
  });
  return new Sandbox({ engine: b.engine, logger: silentLogger() }).start({
    policy: PolicySchema.parse(input),
    policyFile,
    runtime,
    image: { id: b.fixtures.id, entrypoint },
    run: b.run,
    stateDir: b.dir,
  });
}

async function transparent(b: Bench, ca: string): Promise<Record<"http" | "https", Record<Isolation, LoadResult[]>>> {
  const clientDir = join(b.dir, "client");
  await mkdir(clientDir);
  await chmod(clientDir, 0o755);
  await copyFile(join(ROOT, "bench/isolation-load-client.mjs"), join(clientDir, "load-client.mjs"));
  await chmod(join(clientDir, "load-client.mjs"), 0o644);
  const boxes = Object.fromEntries(await Promise.all(ISOLATIONS.map(async (i) => [i, await sandboxFor(b, i, clientDir)]))) as Record<Isolation, StartedSandbox>;
  try {
    const sessions = Object.fromEntries(
      ISOLATIONS.map((i) => {
        boxes[i].stderr.resume();
        return [i, new JsonLineSession(boxes[i].stdin, boxes[i].stdout)];
      }),
    ) as Record<Isolation, JsonLineSession>;
    const sidecarPid = async (i: Isolation): Promise<number | undefined> => {
      const pid = (await b.engine.inspectContainer(boxes[i].sidecarId))?.pid;
      if (pid === undefined) return undefined;
      const child = Number((await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "")).trim().split(/\s+/)[0]);
      return Number.isInteger(child) && child > 0 ? child : undefined;
    };
    const pids = { runc: await sidecarPid("runc"), gvisor: await sidecarPid("gvisor") };
    const measure = async (i: Isolation, url: string): Promise<LoadResult> => {
      const pid = pids[i];
      const before = pid !== undefined ? cpuMsOf(pid) : undefined;
      const r = (await sessions[i].send({ url, ca, concurrency: CONCURRENCY, durationMs: LOAD_MS, warmupMs: 500 })) as unknown as LoadResult;
      if (r.requests === 0) throw new Error(`${i} ${url}: no request succeeded (${r.errors} errors, first: ${r.firstError ?? "?"})`);
      const after = pid !== undefined ? cpuMsOf(pid) : undefined;
      // Warm-up requests are not counted by the client; CPU is per measured request, a slight overestimate.
      return before !== undefined && after !== undefined ? { ...r, sidecarCpuUsPerRequest: ((after - before) * 1000) / r.requests } : r;
    };
    const out = { http: { runc: [] as LoadResult[], gvisor: [] as LoadResult[] }, https: { runc: [] as LoadResult[], gvisor: [] as LoadResult[] } };
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? ISOLATIONS : [...ISOLATIONS].reverse();
      for (const [kind, url] of [["http", `http://${HTTP_HOST}:8080/`], ["https", `https://${TLS_HOST}/`]] as const) {
        for (const i of order) out[kind][i].push(await measure(i, url));
        log(`  round ${round} ${kind}: runc ${out[kind].runc.at(-1)!.rps.toFixed(0)} req/s, gvisor ${out[kind].gvisor.at(-1)!.rps.toFixed(0)} req/s`);
      }
    }
    return out;
  } finally {
    await Promise.all(ISOLATIONS.map((i) => boxes[i].stop()));
  }
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n");
}

async function main(): Promise<void> {
  const b = await setUp();
  const onSignal = (): void => void tearDown(b).finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  try {
    const pki = await makeTestPki([TLS_HOST]);
    await startUpstreams(b, pki);
    const cold = await coldStarts(b);
    log(`transparent path: ${ROUNDS} round(s) of ${LOAD_MS / 1000} s per isolation and protocol, c=${CONCURRENCY}`);
    const load = await transparent(b, pki.caCert);
    const m = (xs: readonly LoadResult[], f: (r: LoadResult) => number | undefined): number => median(xs.flatMap((r) => { const v = f(r); return v === undefined ? [] : [v]; }));
    const row = (label: string, runc: number, gvisor: number, unit: string, digits = 0): string[] => [label, `${runc.toFixed(digits)} ${unit}`, `${gvisor.toFixed(digits)} ${unit}`, `${((gvisor / runc) * 100).toFixed(0)} %`];
    console.log(`\nHangar isolation bench: ${cpus().length} CPUs, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; sidecar on runc in both\n`);
    console.log(
      table([
        ["measurement (median)", "runc", "gvisor", "gvisor / runc"],
        row(`cold start to first tools/list (${RUNS} runs)`, median(cold.runc), median(cold.gvisor), "ms"),
        ...(["http", "https"] as const).flatMap((k) => [
          row(`transparent ${k.toUpperCase()} keep-alive, c=${CONCURRENCY}: throughput`, m(load[k].runc, (r) => r.rps), m(load[k].gvisor, (r) => r.rps), "req/s"),
          row(`transparent ${k.toUpperCase()}: p50 latency`, m(load[k].runc, (r) => r.p50Ms), m(load[k].gvisor, (r) => r.p50Ms), "ms", 3),
          row(`transparent ${k.toUpperCase()}: sidecar CPU per request`, m(load[k].runc, (r) => r.sidecarCpuUsPerRequest), m(load[k].gvisor, (r) => r.sidecarCpuUsPerRequest), "µs"),
        ]),
      ]),
    );
    if (flags.json !== undefined) await writeFile(flags.json, JSON.stringify({ cold, load }, null, 2));
  } finally {
    process.off("SIGINT", onSignal);
    await tearDown(b);
  }
}

await main().catch((err: Error) => {
  console.error(`bench/isolation: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
