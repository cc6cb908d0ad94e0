/**
 * Side-by-side benchmarks of the sidecar against a direct connection, in one run, printed
 * as ratios. Processes (bench/rig.ts): upstreams (bench/upstreams.ts), the real sidecar entry
 * point with a reader for its events, and this one as the client. Everything is on
 * loopback: allowed upstreams on 127.0.0.2, the sidecar on 127.0.0.1 with the same port
 * numbers (as in a sandbox). Every case is warmed up, and each round runs them in a rotated
 * order. To compare two builds of the sidecar, see bench/compare.ts.
 *
 * Wall-clock ratios swing with whatever else the machine runs, so every run also reports
 * the sidecar's own CPU time per request and per MB (from /proc/<pid>/stat), which does not.
 *
 * The sidecar runs as it ships: compiled by tsc (into node_modules/.cache, so that it
 * resolves the project's dependencies), not through tsx, whose transform adds work to every
 * closure a hot path creates. --tsx runs the sources instead.
 *
 *   npm run bench [-- --quick] [-- --rounds 5] [-- --only tls|rps] [-- --json out.json]
 *                 [-- --profile dir]   (writes a .cpuprofile of the sidecar into dir)
 *                 [-- --tsx]           (run src/ through tsx instead of a fresh build)
 *                 [-- --sidecar path/to/sidecar/main.js]   (a prebuilt one, e.g. an older build)
 */
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { measureCpu, type CpuSpent } from "./cpu.js";
import { httpRps, median, tlsThroughput, type Endpoint, type RpsResult } from "./load.js";
import { buildSidecar, progress, Rig, ROOT, upstreamConnections } from "./rig.js";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean" },
    json: { type: "string" },
    rounds: { type: "string" },
    only: { type: "string" },
    profile: { type: "string" },
    tsx: { type: "boolean" },
    sidecar: { type: "string" },
  },
});
const quick = flags.quick === true;
const ROUNDS = flags.rounds !== undefined ? Math.max(1, Number(flags.rounds)) : quick ? 1 : 3;
const STREAM_BYTES = (quick ? 64 : 256) * 1024 * 1024;
const RPS_MS = quick ? 2000 : 5000;
// The explicit path keeps getting cheaper for several seconds while V8 optimises it.
const WARMUP_MS = quick ? 1000 : 3000;
const CONCURRENCY = 16;
const runTls = flags.only === undefined || flags.only === "tls";
const runRps = flags.only === undefined || flags.only === "rps";

interface Sample<T> {
  readonly value: T;
  readonly cpu: CpuSpent;
  /** New connections the upstream accepted during the run (keep-alive reuse shows as few). */
  readonly upstreamConnections?: number;
}

const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");

/** The middle sample by `key`, so its CPU and latency figures belong to the same run. */
function middle<T>(samples: readonly Sample<T>[], key: (v: T) => number): Sample<T> {
  return [...samples].sort((a, b) => key(a.value) - key(b.value))[Math.floor(samples.length / 2)]!;
}

async function main(): Promise<void> {
  const loadBefore = load();
  progress(`load average ${loadBefore}; starting upstreams on 127.0.0.2`);
  const rig = await Rig.start({ streamBytes: STREAM_BYTES });
  process.once("SIGINT", () => {
    rig.kill();
    process.exit(130);
  });
  try {
    const ports = rig.upstreams;
    const tsx = flags.tsx === true;
    const prebuilt = flags.sidecar !== undefined ? resolvePath(flags.sidecar) : undefined;
    if (!tsx && prebuilt === undefined) progress("building the sidecar (tsc -p tsconfig.build.json, then the bundle that ships)");
    const main = tsx ? join(ROOT, "src/sidecar/main.ts") : (prebuilt ?? (await buildSidecar()));
    progress(`starting the sidecar (${tsx ? "src/ through tsx" : main})`);
    const nodeFlags = flags.profile !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${resolvePath(flags.profile)}`] : [];
    const sidecar = await rig.sidecar({ main, tsx, nodeFlags });
    const proxyPort = sidecar.proxyPort;
    const pids = { sidecar: sidecar.pid, upstreams: rig.upstreamPid };

    const tlsDirect = { host: "127.0.0.2", port: ports.tlsPort };
    const tlsTransparent = { host: "127.0.0.1", port: ports.tlsPort };
    const proxy = { host: "127.0.0.1", port: proxyPort };
    const tls = (target: Endpoint, connectAuthority?: string) => async (): Promise<Sample<number>> => {
      const { result, cpu } = await measureCpu(pids, () =>
        tlsThroughput({ target, servername: "api.bench.test", ca: ports.caCert, ...(connectAuthority !== undefined ? { connectAuthority } : {}) }),
      );
      return { value: result.mbPerSec, cpu };
    };
    const tlsCases = {
      direct: tls(tlsDirect),
      transparent: tls(tlsTransparent),
      connect: tls(proxy, `api.bench.test:${ports.tlsPort}`),
    };
    const tlsRuns = { direct: [] as Sample<number>[], transparent: [] as Sample<number>[], connect: [] as Sample<number>[] };

    const httpTarget = { host: "127.0.0.2", port: ports.httpPort };
    const rps = (options: { target: Endpoint; proxy?: Endpoint }, durationMs: number) => async (): Promise<Sample<RpsResult>> => {
      const before = await upstreamConnections(httpTarget);
      const { result, cpu } = await measureCpu(pids, () => httpRps({ ...options, hostHeader: "api.bench.test", concurrency: CONCURRENCY, durationMs }));
      // Each /__stats call opens one connection of its own.
      return { value: result, cpu, upstreamConnections: (await upstreamConnections(httpTarget)) - before - 1 };
    };
    const rpsOptions = {
      direct: { target: httpTarget },
      explicit: { target: httpTarget, proxy },
      transparent: { target: { host: "127.0.0.1", port: ports.httpPort } },
    };
    const rpsRuns = { direct: [] as Sample<RpsResult>[], explicit: [] as Sample<RpsResult>[], transparent: [] as Sample<RpsResult>[] };

    // Each round runs the cases in a rotated order, so none always runs first (or last).
    const rotate = <K extends string>(keys: K[], round: number): K[] => keys.map((_, i) => keys[(i + round) % keys.length]!);
    if (runTls) {
      for (let round = 0; round < ROUNDS; round++) {
        progress(`TLS throughput, round ${round + 1}/${ROUNDS} (${STREAM_BYTES / 1024 / 1024} MiB each), load ${load()}`);
        for (const k of rotate(["direct", "transparent", "connect"] as const, round)) tlsRuns[k].push(await tlsCases[k]());
      }
    }
    if (runRps) {
      progress("HTTP warm-up (JIT, pooled connections)");
      for (const k of ["direct", "explicit", "transparent"] as const) await rps(rpsOptions[k], WARMUP_MS)();
      for (let round = 0; round < ROUNDS; round++) {
        progress(`HTTP keep-alive requests/s, round ${round + 1}/${ROUNDS} (${RPS_MS / 1000}s each, ${CONCURRENCY} connections), load ${load()}`);
        for (const k of rotate(["direct", "explicit", "transparent"] as const, round)) rpsRuns[k].push(await rps(rpsOptions[k], RPS_MS)());
      }
    }

    const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
    const rows: [string, string, string, string][] = [];
    const cpuRows: [string, string, string][] = [];
    if (runTls) {
      const mb = { direct: median(tlsRuns.direct.map((s) => s.value)), transparent: median(tlsRuns.transparent.map((s) => s.value)), connect: median(tlsRuns.connect.map((s) => s.value)) };
      rows.push(
        ["TLS throughput, transparent", `${mb.transparent.toFixed(0)} MB/s`, `${mb.direct.toFixed(0)} MB/s`, `${pct(mb.transparent / mb.direct)} (target ≥ 90%)`],
        ["TLS throughput, explicit CONNECT", `${mb.connect.toFixed(0)} MB/s`, `${mb.direct.toFixed(0)} MB/s`, `${pct(mb.connect / mb.direct)} (target ≥ 90%)`],
      );
      const perMb = (s: readonly Sample<number>[], who: string): number => median(s.map((x) => (x.cpu.ms[who] ?? NaN) / (STREAM_BYTES / 1e6)));
      cpuRows.push(
        ["sidecar CPU per MB, TLS transparent", `${perMb(tlsRuns.transparent, "sidecar").toFixed(3)} ms/MB`, `client ${perMb(tlsRuns.direct, "client").toFixed(2)}, upstream ${perMb(tlsRuns.direct, "upstreams").toFixed(2)} ms/MB (direct)`],
        ["sidecar CPU per MB, TLS CONNECT", `${perMb(tlsRuns.connect, "sidecar").toFixed(3)} ms/MB`, ""],
      );
    }
    if (runRps) {
      const r = { direct: middle(rpsRuns.direct, (v) => v.rps), explicit: middle(rpsRuns.explicit, (v) => v.rps), transparent: middle(rpsRuns.transparent, (v) => v.rps) };
      // Latency: the median over rounds of each percentile, not the percentile of the median run.
      const lat = (s: readonly Sample<RpsResult>[], p: "p50Ms" | "p99Ms"): number => median(s.map((x) => x.value[p]));
      const d50 = lat(rpsRuns.direct, "p50Ms");
      const d99 = lat(rpsRuns.direct, "p99Ms");
      const plus = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(2)} ms`;
      rows.push(
        ["HTTP keep-alive req/s, explicit", r.explicit.value.rps.toFixed(0), r.direct.value.rps.toFixed(0), `${pct(r.explicit.value.rps / r.direct.value.rps)} (target ≥ 70%)`],
        ["HTTP keep-alive req/s, transparent", r.transparent.value.rps.toFixed(0), r.direct.value.rps.toFixed(0), `${pct(r.transparent.value.rps / r.direct.value.rps)} (target ≥ 70%)`],
        ["HTTP p50 latency, explicit", `${lat(rpsRuns.explicit, "p50Ms").toFixed(2)} ms`, `${d50.toFixed(2)} ms`, plus(lat(rpsRuns.explicit, "p50Ms") - d50)],
        ["HTTP p99 latency, explicit", `${lat(rpsRuns.explicit, "p99Ms").toFixed(2)} ms`, `${d99.toFixed(2)} ms`, `${plus(lat(rpsRuns.explicit, "p99Ms") - d99)} (target ≤ 1 ms)`],
        ["HTTP p50 latency, transparent", `${lat(rpsRuns.transparent, "p50Ms").toFixed(2)} ms`, `${d50.toFixed(2)} ms`, plus(lat(rpsRuns.transparent, "p50Ms") - d50)],
        ["HTTP p99 latency, transparent", `${lat(rpsRuns.transparent, "p99Ms").toFixed(2)} ms`, `${d99.toFixed(2)} ms`, `${plus(lat(rpsRuns.transparent, "p99Ms") - d99)} (target ≤ 1 ms)`],
      );
      const perReq = (s: readonly Sample<RpsResult>[], who: string): number => median(s.map((x) => ((x.cpu.ms[who] ?? NaN) * 1000) / x.value.requests));
      cpuRows.push(
        ["sidecar CPU per request, explicit", `${perReq(rpsRuns.explicit, "sidecar").toFixed(0)} µs`, `upstream ${perReq(rpsRuns.direct, "upstreams").toFixed(0)} µs, client ${perReq(rpsRuns.direct, "client").toFixed(0)} µs (direct)`],
        ["sidecar CPU per request, transparent", `${perReq(rpsRuns.transparent, "sidecar").toFixed(0)} µs`, ""],
        ["upstream connections opened, explicit", `${median(rpsRuns.explicit.map((x) => x.upstreamConnections ?? NaN))}`, `for ${CONCURRENCY} client connections`],
      );
    }

    const table = (header: string[], body: string[][]): void => {
      const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
      const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
      console.log(line(header));
      for (const r of body) console.log(line(r));
    };
    console.log(`\nHangar sidecar vs direct, loopback, ${ROUNDS} round(s), medians (node ${process.version}, ${CONCURRENCY} connections, load average ${loadBefore} → ${load()})\n`);
    table(["benchmark", "via sidecar", "direct", "ratio"], rows);
    console.log("");
    table(["CPU time (noise-resistant)", "sidecar", "for scale"], cpuRows);
    const errors = [...rpsRuns.direct, ...rpsRuns.explicit, ...rpsRuns.transparent].reduce((n, r) => n + r.value.errors, 0);
    if (errors > 0) console.log(`\nwarning: ${errors} request(s) failed during the run`);
    if (flags.json !== undefined) {
      await writeFile(
        flags.json,
        JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, loadavg: { before: loadBefore, after: load() }, streamBytes: STREAM_BYTES, tls: tlsRuns, rps: rpsRuns }, null, 2) + "\n",
      );
    }
  } finally {
    await rig.close();
  }
}

await main();
