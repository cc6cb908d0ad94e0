/**
 * Two sidecar builds side by side (say, before and after a change), each case measured in
 * alternating short runs, A then B then B then A, so that whatever else the machine runs
 * weighs on both alike. Reports each build's CPU time per request or per MB (medians) and
 * in how many pairs B was the cheaper one: a change is real when B wins nearly every pair.
 *
 *   node --import tsx bench/compare.ts --a path/to/old/sidecar/main.js [--b path/to/main.js]
 *                                      [--pairs 12] [--ms 1500] [--only tls|rps|dns]
 *                                      [--a-flags="--node-flag ..."] [--b-flags="..."] [--client node|wrk] [--concurrency 16]
 *
 * The DNS case (only with --only dns) runs dnsperf (Debian's package) at each sidecar on
 * loopback, for the declared name, for an undeclared one, and for 10 000 distinct undeclared
 * names (dnsperf loops over the file); dnsperf is given the server's address, so it resolves
 * nothing itself.
 *
 * The HTTP cases' client is Node's (bench/load.ts) unless `--client wrk`: wrk (Debian's package,
 * one thread, 16 connections) costs the machine far less CPU per request, so the sidecar's
 * figures move less with what the client happens to do.
 *
 * Without --b, B is a fresh build of src/ (see bench/rig.ts).
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { measureCpu } from "./cpu.js";
import { httpRps, median, tlsThroughput, type Endpoint } from "./load.js";
import { buildSidecar, progress, Rig, type RunningSidecar } from "./rig.js";

const { values: flags } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string" },
    pairs: { type: "string" },
    ms: { type: "string" },
    only: { type: "string" },
    "a-flags": { type: "string" },
    "b-flags": { type: "string" },
    client: { type: "string" },
    concurrency: { type: "string" },
  },
});
if (flags.a === undefined) {
  process.stderr.write("usage: node --import tsx bench/compare.ts --a <sidecar main.js> [--b <main.js>] [--pairs N] [--ms N] [--only tls|rps|dns] [--a-flags F] [--b-flags F]\n");
  process.exit(2);
}
const PAIRS = Number(flags.pairs ?? 12);
const RUN_MS = Number(flags.ms ?? 1500);
const STREAM_BYTES = 128 * 1024 * 1024;
const CONCURRENCY = Number(flags.concurrency ?? 16);

interface Run {
  /** Sidecar CPU µs per request, or ms per MB. */
  readonly cpu: number;
  /** Requests/s or MB/s. */
  readonly rate: number;
}

type Case = (s: RunningSidecar) => Promise<Run>;

const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");

async function main(): Promise<void> {
  const rig = await Rig.start({ streamBytes: STREAM_BYTES });
  process.once("SIGINT", () => {
    rig.kill();
    process.exit(130);
  });
  try {
    const { httpPort, tlsPort, caCert } = rig.upstreams;
    const mainA = resolvePath(flags.a!);
    const mainB = flags.b !== undefined ? resolvePath(flags.b) : await buildSidecar();
    progress(`A: ${mainA}\n  … B: ${mainB}`);
    const nodeFlags = (text: string | undefined): string[] => (text ?? "").split(/\s+/).filter((f) => f.length > 0);
    const a = await rig.sidecar({ main: mainA, nodeFlags: nodeFlags(flags["a-flags"]) });
    const b = await rig.sidecar({ main: mainB, freePorts: true, nodeFlags: nodeFlags(flags["b-flags"]) });

    const rps = (via: (s: RunningSidecar) => { target: Endpoint; proxy?: Endpoint }, ms: number): Case => async (s) => {
      const { result, cpu } = await measureCpu({ sidecar: s.pid }, () =>
        flags.client === "wrk"
          ? wrk({ ...via(s), hostHeader: "api.bench.test", dir: rig.dir, ms })
          : httpRps({ ...via(s), hostHeader: "api.bench.test", concurrency: CONCURRENCY, durationMs: ms }),
      );
      return { cpu: ((cpu.ms["sidecar"] ?? NaN) * 1000) / result.requests, rate: result.rps };
    };
    const tls = (via: (s: RunningSidecar) => { target: Endpoint; connectAuthority?: string }): Case => async (s) => {
      const { result, cpu } = await measureCpu({ sidecar: s.pid }, () => tlsThroughput({ ...via(s), servername: "api.bench.test", ca: caCert }));
      return { cpu: (cpu.ms["sidecar"] ?? NaN) / (result.bytes / 1e6), rate: result.mbPerSec };
    };
    const upstreamHttp = { host: "127.0.0.2", port: httpPort };
    const explicit = (s: RunningSidecar) => ({ target: upstreamHttp, proxy: { host: "127.0.0.1", port: s.proxyPort } });
    const transparentHttp = (s: RunningSidecar) => ({ target: { host: "127.0.0.1", port: s.transparent.get(httpPort)! } });
    const dns = (file: string): Case => async (s) => {
      const { result, cpu } = await measureCpu({ sidecar: s.pid }, () => dnsperf(s.dnsPort, file, RUN_MS));
      return { cpu: ((cpu.ms["sidecar"] ?? NaN) * 1000) / result.completed, rate: result.qps };
    };
    const dnsFiles = { allowed: join(rig.dir, "dns-allowed.txt"), denied: join(rig.dir, "dns-denied.txt"), distinct: join(rig.dir, "dns-distinct.txt") };
    await writeFile(dnsFiles.allowed, "api.bench.test A\n");
    await writeFile(dnsFiles.denied, "undeclared.bench.test A\n");
    // Never-repeated denied names, as a tunnelling sender sends them (bench/peers.ts's denied file).
    await writeFile(dnsFiles.distinct, Array.from({ length: 10_000 }, (_, i) => `d${i}.denied.bench.test A\n`).join(""));
    const cases: [string, string, Case][] = [];
    if (flags.only === "dns") {
      cases.push(["DNS allowed name", "µs/query", dns(dnsFiles.allowed)], ["DNS denied name", "µs/query", dns(dnsFiles.denied)], ["DNS distinct denied names", "µs/query", dns(dnsFiles.distinct)]);
      progress("warm-up (JIT, the name ledger)");
      for (const s of [a, b]) for (const file of Object.values(dnsFiles)) await dnsperf(s.dnsPort, file, 1000);
    }
    if (flags.only === undefined || flags.only === "rps") {
      cases.push(["HTTP explicit", "µs/req", rps(explicit, RUN_MS)], ["HTTP transparent", "µs/req", rps(transparentHttp, RUN_MS)]);
    }
    if (flags.only === undefined || flags.only === "tls") {
      cases.push(
        ["TLS transparent", "ms/MB", tls((s) => ({ target: { host: "127.0.0.1", port: s.transparent.get(tlsPort)! } }))],
        ["TLS CONNECT", "ms/MB", tls((s) => ({ target: { host: "127.0.0.1", port: s.proxyPort }, connectAuthority: `api.bench.test:${tlsPort}` }))],
      );
    }

    if (flags.only === undefined || flags.only === "rps") {
      progress("warm-up (JIT, pooled connections)");
      for (const s of [a, b]) {
        await rps(explicit, 3000)(s);
        await rps(transparentHttp, 1000)(s);
      }
    }
    const rows: string[][] = [];
    for (const [name, unit, run] of cases) {
      const runs = { a: [] as Run[], b: [] as Run[] };
      for (let i = 0; i < PAIRS; i++) {
        progress(`${name}: pair ${i + 1}/${PAIRS}, load ${load()}`);
        // ABBA: neither build always goes first.
        const order = i % 2 === 0 ? (["a", "b"] as const) : (["b", "a"] as const);
        for (const k of order) runs[k].push(await run(k === "a" ? a : b));
      }
      const wins = runs.b.filter((r, i) => r.cpu < runs.a[i]!.cpu).length;
      const cpuA = median(runs.a.map((r) => r.cpu));
      const cpuB = median(runs.b.map((r) => r.cpu));
      const digits = unit === "ms/MB" ? 3 : 0;
      rows.push([
        name,
        `${cpuA.toFixed(digits)} ${unit}`,
        `${cpuB.toFixed(digits)} ${unit}`,
        `${(((cpuB - cpuA) / cpuA) * 100).toFixed(0)}%`,
        `${wins}/${PAIRS}`,
        `${median(runs.a.map((r) => r.rate)).toFixed(0)} → ${median(runs.b.map((r) => r.rate)).toFixed(0)}`,
      ]);
    }
    const header = ["case", "A sidecar CPU", "B sidecar CPU", "B vs A", "B cheaper", "rate A → B (req/s, MB/s)"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
    console.log(`\nA/B, ${PAIRS} alternating pairs per case (node ${process.version}, load average now ${load()})\n`);
    console.log(line(header));
    for (const r of rows) console.log(line(r));
  } finally {
    await rig.close();
  }
}

/** wrk (one thread, CONCURRENCY keep-alive connections) for about `ms`, at the proxy (absolute form) or the target. */
async function wrk(o: { target: Endpoint; proxy?: Endpoint; hostHeader: string; dir: string; ms: number }): Promise<{ requests: number; rps: number }> {
  const authority = `${o.hostHeader}:${o.target.port}`;
  const script = join(o.dir, `compare-wrk-${o.proxy !== undefined ? "proxy" : "origin"}.lua`);
  await writeFile(script, `${o.proxy !== undefined ? `wrk.path = "http://${authority}/"\n` : ""}wrk.headers["Host"] = "${authority}"\n`);
  const via = o.proxy ?? o.target;
  const seconds = String(Math.max(1, Math.round(o.ms / 1000)));
  const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
    const child = spawn("wrk", ["-t1", `-c${CONCURRENCY}`, `-d${seconds}s`, "-s", script, `http://${via.host}:${via.port}/`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.once("error", (err) => reject(new Error(`wrk: ${err.message} (apt-get install wrk)`)));
    child.once("exit", (c) => resolve({ stdout: out, code: c }));
  });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
  if (code !== 0 || !(requests > 0) || /Non-2xx/.test(stdout)) throw new Error(`wrk at ${via.host}:${via.port} exited with ${code}:\n${stdout}`);
  return { requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN) };
}

/** dnsperf at 127.0.0.1:port for about `ms`, 4 clients with 100 queries in flight (as bench/peers.ts). */
async function dnsperf(port: number, file: string, ms: number): Promise<{ completed: number; qps: number }> {
  const seconds = String(Math.max(1, Math.round(ms / 1000)));
  const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
    const child = spawn("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", file, "-l", seconds, "-c", "4", "-q", "100", "-t", "2"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.once("error", (err) => reject(new Error(`dnsperf: ${err.message} (apt-get install dnsperf)`)));
    child.once("exit", (c) => resolve({ stdout: out, code: c }));
  });
  const completed = Number(/Queries completed:\s+(\d+)/.exec(stdout)?.[1] ?? NaN);
  if (code !== 0 || !(completed > 0)) throw new Error(`dnsperf at 127.0.0.1:${port} (${file}) exited with ${code}:\n${stdout}`);
  return { completed, qps: Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN) };
}

await main();
