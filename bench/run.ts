/**
 * Side-by-side benchmarks of the sidecar against a direct connection, in one run, printed
 * as ratios. Three processes: upstreams (bench/upstreams.ts), the real sidecar entry point,
 * and this one as the client. Everything is on loopback: allowed upstreams on 127.0.0.2,
 * the sidecar on 127.0.0.1 with the same port numbers (as in a sandbox).
 *
 *   npm run bench [-- --quick] [-- --json out.json]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { httpRps, median, tlsThroughput, type RpsResult } from "./load.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: flags } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "string" } } });
const quick = flags.quick === true;
const ROUNDS = quick ? 1 : 3;
const STREAM_BYTES = (quick ? 64 : 256) * 1024 * 1024;
const RPS_MS = quick ? 2000 : 5000;
const CONCURRENCY = 16;

interface Upstreams {
  httpPort: number;
  tlsPort: number;
  dnsPort: number;
  caCert: string;
}

function firstLine<T>(child: ChildProcess, pick: (line: string) => T | undefined, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
    rl.on("line", (line) => {
      const got = pick(line);
      if (got !== undefined) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    child.once("exit", (code) => reject(new Error(`${what}: process exited with ${code}`)));
  });
}

function node(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, HANGAR_LOG_LEVEL: "warn" } });
}

function progress(msg: string): void {
  process.stderr.write(`  … ${msg}\n`);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-bench-"));
  const children: ChildProcess[] = [];
  try {
    progress("starting upstreams on 127.0.0.2");
    const up = node([join(ROOT, "bench/upstreams.ts"), "127.0.0.2", String(STREAM_BYTES)]);
    children.push(up);
    const ports = await firstLine<Upstreams>(up, (l) => JSON.parse(l) as Upstreams, "upstreams");

    const policyFile = join(dir, "policy.yaml");
    await writeFile(
      policyFile,
      `version: 1\nname: bench\nserver: { npm: { package: "bench", version: "1.0.0" } }\negress:\n  allow:\n    - host: api.bench.test\n      ports: [${ports.httpPort}, ${ports.tlsPort}]\n`,
    );
    const configFile = join(dir, "sidecar.json");
    await writeFile(
      configFile,
      JSON.stringify({
        policyFile,
        answerAddress: "127.0.0.1",
        listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0 },
        upstreamDns: [`127.0.0.2:${ports.dnsPort}`],
        trustedUpstreamRanges: ["127.0.0.2/32"],
      }),
    );
    progress("starting the sidecar");
    const sidecar = node([join(ROOT, "src/sidecar/main.ts"), "--config", configFile]);
    children.push(sidecar);
    const started = await firstLine(sidecar, (l) => {
      const e = JSON.parse(l) as { type: string; action?: string; detail?: { proxy: { port: number } } };
      return e.type === "lifecycle" && e.action === "started" ? e.detail! : undefined;
    }, "sidecar start");
    // Drain the event stream so the sidecar never blocks on a full pipe.
    sidecar.stdout!.resume();
    const proxyPort = started.proxy.port;

    const direct = { host: "127.0.0.2", port: ports.tlsPort };
    const viaSidecar = { host: "127.0.0.1", port: ports.tlsPort };
    const proxy = { host: "127.0.0.1", port: proxyPort };
    const tlsRuns = { direct: [] as number[], transparent: [] as number[], connect: [] as number[] };
    for (let round = 1; round <= ROUNDS; round++) {
      progress(`TLS throughput, round ${round}/${ROUNDS} (${STREAM_BYTES / 1024 / 1024} MiB each)`);
      tlsRuns.direct.push((await tlsThroughput({ target: direct, servername: "api.bench.test", ca: ports.caCert })).mbPerSec);
      tlsRuns.transparent.push((await tlsThroughput({ target: viaSidecar, servername: "api.bench.test", ca: ports.caCert })).mbPerSec);
      tlsRuns.connect.push(
        (await tlsThroughput({ target: proxy, servername: "api.bench.test", ca: ports.caCert, connectAuthority: `api.bench.test:${ports.tlsPort}` })).mbPerSec,
      );
    }

    const rpsRuns = { direct: [] as RpsResult[], explicit: [] as RpsResult[], transparent: [] as RpsResult[] };
    for (let round = 1; round <= ROUNDS; round++) {
      progress(`HTTP keep-alive requests/s, round ${round}/${ROUNDS} (${RPS_MS / 1000}s each, ${CONCURRENCY} connections)`);
      const target = { host: "127.0.0.2", port: ports.httpPort };
      rpsRuns.direct.push(await httpRps({ target, hostHeader: "api.bench.test", concurrency: CONCURRENCY, durationMs: RPS_MS }));
      rpsRuns.explicit.push(await httpRps({ target, hostHeader: "api.bench.test", proxy, concurrency: CONCURRENCY, durationMs: RPS_MS }));
      rpsRuns.transparent.push(
        await httpRps({ target: { host: "127.0.0.1", port: ports.httpPort }, hostHeader: "api.bench.test", concurrency: CONCURRENCY, durationMs: RPS_MS }),
      );
    }

    const mb = { direct: median(tlsRuns.direct), transparent: median(tlsRuns.transparent), connect: median(tlsRuns.connect) };
    const pick = (rs: RpsResult[]): RpsResult => [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
    const rps = { direct: pick(rpsRuns.direct), explicit: pick(rpsRuns.explicit), transparent: pick(rpsRuns.transparent) };
    const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
    const rows: [string, string, string, string][] = [
      ["TLS throughput, transparent", `${mb.transparent.toFixed(0)} MB/s`, `${mb.direct.toFixed(0)} MB/s`, `${pct(mb.transparent / mb.direct)} (target ≥ 90%)`],
      ["TLS throughput, explicit CONNECT", `${mb.connect.toFixed(0)} MB/s`, `${mb.direct.toFixed(0)} MB/s`, `${pct(mb.connect / mb.direct)} (target ≥ 90%)`],
      ["HTTP keep-alive req/s, explicit", rps.explicit.rps.toFixed(0), rps.direct.rps.toFixed(0), `${pct(rps.explicit.rps / rps.direct.rps)} (target ≥ 70%)`],
      ["HTTP keep-alive req/s, transparent", rps.transparent.rps.toFixed(0), rps.direct.rps.toFixed(0), `${pct(rps.transparent.rps / rps.direct.rps)} (target ≥ 70%)`],
      ["HTTP p50 latency, explicit", `${rps.explicit.p50Ms.toFixed(2)} ms`, `${rps.direct.p50Ms.toFixed(2)} ms`, `+${(rps.explicit.p50Ms - rps.direct.p50Ms).toFixed(2)} ms`],
      ["HTTP p99 latency, explicit", `${rps.explicit.p99Ms.toFixed(2)} ms`, `${rps.direct.p99Ms.toFixed(2)} ms`, `+${(rps.explicit.p99Ms - rps.direct.p99Ms).toFixed(2)} ms (target ≤ 1 ms)`],
      ["HTTP p99 latency, transparent", `${rps.transparent.p99Ms.toFixed(2)} ms`, `${rps.direct.p99Ms.toFixed(2)} ms`, `+${(rps.transparent.p99Ms - rps.direct.p99Ms).toFixed(2)} ms (target ≤ 1 ms)`],
    ];
    const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ["benchmark", "via sidecar", "direct", "ratio"][i]!.length));
    const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    console.log(`\nHangar sidecar vs direct, loopback, ${ROUNDS} round(s), medians (node ${process.version}, ${CONCURRENCY} connections)\n`);
    console.log(line(["benchmark", "via sidecar", "direct", "ratio"]));
    for (const r of rows) console.log(line(r));
    const errors = [...rpsRuns.direct, ...rpsRuns.explicit, ...rpsRuns.transparent].reduce((n, r) => n + r.errors, 0);
    if (errors > 0) console.log(`\nwarning: ${errors} request(s) failed during the run`);
    if (flags.json !== undefined) {
      await writeFile(flags.json, JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, tlsMbPerSec: tlsRuns, rps: rpsRuns }, null, 2) + "\n");
    }
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
