/**
 * The sidecar side by side with what users would deploy instead, in one run, on loopback:
 * Squid (forward proxy, ACL for the same host and ports, cache off, no access log), tinyproxy
 * (Filter allowlist, default deny) and dnsmasq (allowlist, cache on and off), against the same
 * upstreams (bench/upstreams.ts on 127.0.0.2) with the same clients. Beside them, the floor
 * of our own stack for DNS (bench/dns-floor.mjs: a bare Node UDP responder, no policy), so that
 * what Node itself costs per datagram is measured in the same run and not guessed, once on
 * Node's dgram and once on the sidecar's own batched socket (images/sidecar/native/udp-batch.c,
 * compiled here with the host's cc as the image builder does; left out without one):
 *
 *   - wrk: HTTP keep-alive requests/s through the explicit proxy, c=1 and c=16 (and the
 *     sidecar's transparent port against direct);
 *   - a TLS CONNECT bulk transfer (bench/load.ts), through each proxy and direct;
 *   - dnsperf: DNS queries/s for an allowed name and for denied ones.
 *
 * Every round runs each figure's subjects in a rotated order. It prints each figure as a ratio
 * (median of per-round ratios) to direct and to each peer, and each proxy's CPU per request,
 * query or MB from /proc/<pid>/stat, which a busy machine disturbs far less than wall time.
 *
 * Nothing here installs anything: `apt-get install squid tinyproxy dnsmasq wrk dnsperf` first.
 * Nothing leaves the machine: every peer and client runs in a private mount namespace
 * (`unshare -m`) whose /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf name loopback only,
 * and the sidecar's upstream DNS is ours (bench/rig.ts); see bench/peer-set.ts. Needs root and Linux.
 *
 *   node --import tsx bench/peers.ts [--quick] [--rounds N] [--json out.json]
 *                                    [--only http|tls|dns] [--sidecar path/to/sidecar/main.js]
 *
 * The sidecar runs with the node flags of the image's ENTRYPOINT (images/sidecar/Dockerfile),
 * so its RSS and CPU are those of what ships.
 */
import { writeFile, chmod } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { selfCpuMs } from "./cpu.js";
import { median, tlsThroughput } from "./load.js";
import { buildBatchAddon, HOST, LoopbackNamespace, PeerSet, rssMb, sleep, treeCpuMs } from "./peer-set.js";
import { buildSidecar, imageNodeFlags, progress, Rig } from "./rig.js";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean" },
    rounds: { type: "string" },
    json: { type: "string" },
    only: { type: "string" },
    sidecar: { type: "string" },
  },
});
const quick = flags.quick === true;
const ROUNDS = flags.rounds !== undefined ? Math.max(1, Math.min(20, Number(flags.rounds))) : quick ? 1 : 3;
const RUN_S = quick ? 2 : 5;
/** How long every subject idles before its RSS is read. */
const IDLE_SETTLE_MS = 12_000;
const WARMUP_S = quick ? 1 : 3;
const STREAM_BYTES = (quick ? 64 : 256) * 1024 * 1024;
const only = (what: string): boolean => flags.only === undefined || flags.only === what;

// ---------------------------------------------------------------------------------------------
// Clients (wrk and dnsperf run inside the namespace, like the peers).

interface Measured {
  /** req/s, MB/s or queries/s */
  readonly rate: number;
  /** requests, MB or queries done */
  readonly units: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Non-2xx answers, socket errors, lost queries or unexpected response codes. */
  readonly errors: number;
  readonly note?: string;
}

/** Milliseconds from wrk's "1.23ms" / "45.60us" / "1.20s". */
function wrkMs(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (m === null) return NaN;
  return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
}

async function wrk(peers: PeerSet, dir: string, options: { connect: { host: string; port: number }; absolute?: boolean; upstreamPort: number; connections: number; seconds: number }): Promise<Measured> {
  const authority = `${HOST}:${options.upstreamPort}`;
  const script = join(dir, `wrk-${options.absolute === true ? "proxy" : "origin"}-${options.upstreamPort}.lua`);
  await writeFile(script, `${options.absolute === true ? `wrk.path = "http://${authority}/"\n` : ""}wrk.headers["Host"] = "${authority}"\n`);
  const out = await peers.run(
    ["wrk", "-t1", `-c${options.connections}`, `-d${options.seconds}s`, "--latency", "-s", script, `http://${options.connect.host}:${options.connect.port}/`],
    (options.seconds + 15) * 1000,
  );
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors === null ? 0 : socketErrors.slice(1).reduce((n, x) => n + Number(x), 0));
  return {
    rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    units: requests - non2xx,
    p50Ms: wrkMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
    p99Ms: wrkMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    errors,
    // A proxy without keep-alive (tinyproxy) closes after each response: wrk counts a read error and reconnects.
    ...(errors > 0 ? { note: `${non2xx} non-2xx; socket errors connect/read/write/timeout ${socketErrors?.slice(1).join("/") ?? "0"}` } : {}),
  };
}

async function dnsperf(peers: PeerSet, file: string, port: number, seconds: number, expect: readonly string[]): Promise<Measured> {
  const out = await peers.run(["dnsperf", "-s", "127.0.0.1", "-p", String(port), "-d", file, "-l", String(seconds), "-c", "4", "-q", "100", "-t", "2"], (seconds + 15) * 1000);
  const completed = Number(/Queries completed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const codes = /Response codes:\s+(.*)$/m.exec(out)?.[1] ?? "";
  let unexpected = 0;
  for (const m of codes.matchAll(/([A-Z]+) (\d+)/g)) if (!expect.includes(m[1]!)) unexpected += Number(m[2]);
  return {
    rate: Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    units: completed,
    p50Ms: Number(/Average Latency \(s\):\s+([\d.]+)/.exec(out)?.[1] ?? NaN) * 1000,
    errors: lost + unexpected,
    note: codes.trim(),
  };
}

/** The status a proxy answers for one absolute-form GET to `authority` (the proxy resolves it, not us). */
function statusVia(proxyPort: number, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: proxyPort, path: `http://${authority}/`, headers: { host: authority }, agent: false }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timed out")));
    req.end();
  });
}

async function tlsBulk(target: { host: string; port: number }, connectAuthority: string | undefined, ca: string): Promise<Measured> {
  const run = tlsThroughput({ target, servername: HOST, ca, ...(connectAuthority !== undefined ? { connectAuthority } : {}) });
  const timeout = sleep(120_000).then(() => {
    throw new Error("TLS transfer timed out");
  });
  try {
    const r = await Promise.race([run, timeout]);
    return { rate: r.mbPerSec, units: r.bytes / 1e6, errors: r.bytes < STREAM_BYTES ? 1 : 0 };
  } catch (err) {
    return { rate: NaN, units: NaN, errors: 1, note: (err as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// Figures, rounds and the report.

interface Subject {
  readonly name: string;
  /** The process whose CPU counts (none for direct). */
  readonly pid?: number;
  readonly run: () => Promise<Measured>;
}

interface Figure {
  readonly name: string;
  readonly unit: string;
  /** CPU per `cpuUnit`, in `cpuScale` of a millisecond (1000 → µs). */
  readonly cpuUnit: string;
  readonly cpuScale: number;
  readonly subjects: readonly Subject[];
  /** The subjects the sidecar is divided by (direct first when present). */
  readonly versus: readonly string[];
}

interface Sample extends Measured {
  readonly subject: string;
  readonly round: number;
  readonly cpuMs?: number;
  readonly clientCpuMs: number;
}

async function measure(subject: Subject, round: number): Promise<Sample> {
  const before = subject.pid !== undefined ? treeCpuMs(subject.pid) : undefined;
  const self = selfCpuMs();
  let m: Measured;
  try {
    m = await subject.run();
  } catch (err) {
    m = { rate: NaN, units: NaN, errors: 1, note: (err as Error).message.slice(0, 300) };
  }
  const cpuMs = before !== undefined ? treeCpuMs(subject.pid!) - before : undefined;
  return { ...m, subject: subject.name, round, clientCpuMs: selfCpuMs() - self, ...(cpuMs !== undefined ? { cpuMs } : {}) };
}

const rotate = <T>(xs: readonly T[], round: number): T[] => xs.map((_, i) => xs[(i + round) % xs.length]!);
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");
const fmt = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : "—");
const fmtRate = (x: number): string => (!Number.isFinite(x) ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(1));

function table(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  console.log(line(header));
  for (const r of body) console.log(line(r));
}

async function main(): Promise<void> {
  const loadBefore = load();
  progress(`load average ${loadBefore}; starting upstreams on 127.0.0.2`);
  const rig = await Rig.start({ streamBytes: STREAM_BYTES });
  await chmod(rig.dir, 0o755); // the peers drop root and read their config from here
  const ns = await LoopbackNamespace.create(rig.dir);
  const peers = new PeerSet(ns, rig.dir);
  process.once("SIGINT", () => {
    peers.kill();
    rig.kill();
    process.exit(130);
  });
  try {
    const { httpPort, tlsPort, dnsPort, caCert } = rig.upstreams;
    const main = flags.sidecar !== undefined ? resolvePath(flags.sidecar) : (progress("building the sidecar (tsc -p tsconfig.build.json, then the bundle that ships)"), await buildSidecar());
    progress(`starting the sidecar (${main}), Squid, tinyproxy, dnsmasq (cache on, cache off) and the Node DNS floor`);
    const sidecar = await rig.sidecar({ main, discardEvents: true, nodeFlags: imageNodeFlags() });
    const squid = await peers.squid({ http: httpPort, tls: tlsPort });
    const tinyproxy = await peers.tinyproxy({ tls: tlsPort });
    const dnsmasq = await peers.dnsmasq("dnsmasq", dnsPort, true);
    const dnsmasqNoCache = await peers.dnsmasq("dnsmasq-nocache", dnsPort, false);
    const floor = await peers.dnsFloor("node-floor", imageNodeFlags());
    // The same floor with its socket read and written in batches (recvmmsg / sendmmsg) by the
    // sidecar's own addon: the least that socket costs. Left out if it cannot be compiled.
    const batchAddon = await buildBatchAddon(rig.dir);
    if (batchAddon.file === undefined) progress(`node-floor-batched left out: ${batchAddon.reason}`);
    const batchedFloor = batchAddon.file === undefined ? undefined : await peers.dnsFloor("node-floor-batched", imageNodeFlags(), batchAddon.file);
    // Idle means idle: V8 keeps its start-up garbage until its memory reducer runs, some 8 s
    // after the last allocation (bench/sidecar-memory.ts: 66-67 MB one second after start,
    // 58-59 MB ten seconds after), so every subject settles this long before it is read.
    progress(`letting every subject settle ${IDLE_SETTLE_MS / 1000} s before reading idle RSS`);
    await sleep(IDLE_SETTLE_MS);
    // node-floor: a Node process that has loaded nothing but dgram, the least any Node sidecar can idle at.
    const rss = { sidecar: rssMb(sidecar.pid), squid: rssMb(squid.pid), tinyproxy: rssMb(tinyproxy.pid), dnsmasq: rssMb(dnsmasq.pid), "node-floor": rssMb(floor.pid) };

    const allowedFile = join(rig.dir, "allowed.txt");
    const deniedFile = join(rig.dir, "denied.txt");
    await writeFile(allowedFile, `${HOST} A\n`);
    await writeFile(deniedFile, Array.from({ length: 10_000 }, (_, i) => `d${i}.denied.bench.test A\n`).join(""));

    const direct = { host: "127.0.0.2", port: httpPort };
    const viaProxy = (port: number, c: number, seconds = RUN_S) => () => wrk(peers, rig.dir, { connect: { host: "127.0.0.1", port }, absolute: true, upstreamPort: httpPort, connections: c, seconds });
    const origin = (to: { host: string; port: number }, c: number, seconds = RUN_S) => () => wrk(peers, rig.dir, { connect: to, upstreamPort: httpPort, connections: c, seconds });
    const proxyPorts = { sidecar: sidecar.proxyPort, squid: squid.port, tinyproxy: tinyproxy.port };
    const transparentHttp = { host: "127.0.0.1", port: httpPort };
    const httpFigure = (c: number): Figure => ({
      name: `explicit-proxy HTTP keep-alive, c=${c}`,
      unit: "req/s",
      cpuUnit: "µs/req",
      cpuScale: 1000,
      versus: ["direct", "squid", "tinyproxy"],
      subjects: [
        { name: "direct", run: origin(direct, c) },
        { name: "sidecar", pid: sidecar.pid, run: viaProxy(proxyPorts.sidecar, c) },
        { name: "squid", pid: squid.pid, run: viaProxy(proxyPorts.squid, c) },
        { name: "tinyproxy", pid: tinyproxy.pid, run: viaProxy(proxyPorts.tinyproxy, c) },
      ],
    });
    const tlsAuthority = `${HOST}:${tlsPort}`;
    const dnsFigure = (kind: "allowed" | "denied"): Figure => {
      const file = kind === "allowed" ? allowedFile : deniedFile;
      const expect = kind === "allowed" ? ["NOERROR"] : ["NXDOMAIN", "REFUSED"];
      return {
        name: `DNS, ${kind} names`,
        unit: "queries/s",
        cpuUnit: "µs/query",
        cpuScale: 1000,
        versus: ["dnsmasq", "dnsmasq-nocache", "node-floor", "node-floor-batched"],
        subjects: [
          { name: "sidecar", pid: sidecar.pid, run: () => dnsperf(peers, file, sidecar.dnsPort, RUN_S, expect) },
          { name: "dnsmasq", pid: dnsmasq.pid, run: () => dnsperf(peers, file, dnsmasq.port, RUN_S, expect) },
          { name: "dnsmasq-nocache", pid: dnsmasqNoCache.pid, run: () => dnsperf(peers, file, dnsmasqNoCache.port, RUN_S, expect) },
          { name: "node-floor", pid: floor.pid, run: () => dnsperf(peers, file, floor.port, RUN_S, expect) },
          ...(batchedFloor === undefined ? [] : [{ name: "node-floor-batched", pid: batchedFloor.pid, run: () => dnsperf(peers, file, batchedFloor.port, RUN_S, expect) }]),
        ],
      };
    };
    const figures: Figure[] = [];
    if (only("http")) {
      figures.push(httpFigure(1), httpFigure(16), {
        name: "transparent HTTP keep-alive, c=16",
        unit: "req/s",
        cpuUnit: "µs/req",
        cpuScale: 1000,
        versus: ["direct"],
        subjects: [
          { name: "direct", run: origin(direct, 16) },
          { name: "sidecar", pid: sidecar.pid, run: origin(transparentHttp, 16) },
        ],
      });
    }
    if (only("tls")) {
      figures.push({
        name: `TLS CONNECT bulk (${STREAM_BYTES / 1024 / 1024} MiB)`,
        unit: "MB/s",
        cpuUnit: "ms/MB",
        cpuScale: 1,
        versus: ["direct", "squid", "tinyproxy"],
        subjects: [
          { name: "direct", run: () => tlsBulk({ host: "127.0.0.2", port: tlsPort }, undefined, caCert) },
          { name: "sidecar", pid: sidecar.pid, run: () => tlsBulk({ host: "127.0.0.1", port: sidecar.proxyPort }, tlsAuthority, caCert) },
          { name: "squid", pid: squid.pid, run: () => tlsBulk({ host: "127.0.0.1", port: squid.port }, tlsAuthority, caCert) },
          { name: "tinyproxy", pid: tinyproxy.pid, run: () => tlsBulk({ host: "127.0.0.1", port: tinyproxy.port }, tlsAuthority, caCert) },
        ],
      });
    }
    if (only("dns")) figures.push(dnsFigure("allowed"), dnsFigure("denied"));

    // The same allowlist everywhere: each proxy refuses a host it was not given.
    const refusals = await Promise.all(Object.entries(proxyPorts).map(async ([name, port]) => [name, await statusVia(port, `evil.bench.test:${httpPort}`)] as const));
    progress(`an undeclared host through each proxy: ${refusals.map(([n, st]) => `${n} ${st}`).join(", ")}`);
    if (refusals.some(([, st]) => st !== 403)) throw new Error("a proxy did not refuse an undeclared host: its allowlist is not the sidecar's");

    // Warm-up: JIT and pooled connections for the sidecar, caches for everyone; not measured.
    progress("warm-up (every client through every subject)");
    if (only("http")) {
      await origin(direct, 16, WARMUP_S)();
      for (const port of Object.values(proxyPorts)) await viaProxy(port, 16, WARMUP_S)();
      await origin(transparentHttp, 16, WARMUP_S)();
    }
    if (only("tls")) for (const s of figures.find((f) => f.unit === "MB/s")!.subjects) await s.run();
    if (only("dns")) for (const port of [sidecar.dnsPort, dnsmasq.port, floor.port, ...(batchedFloor === undefined ? [] : [batchedFloor.port])]) await dnsperf(peers, allowedFile, port, 1, ["NOERROR"]).catch(() => undefined);

    const samples = new Map<string, Sample[]>(figures.map((f) => [f.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of figures) {
        progress(`round ${round + 1}/${ROUNDS}: ${f.name}, load ${load()}`);
        for (const s of rotate(f.subjects, round)) samples.get(f.name)!.push(await measure(s, round));
      }
    }

    // The report: per figure, each subject's median, and the sidecar's per-round ratios to the others.
    const of = (f: Figure, subject: string): Sample[] => samples.get(f.name)!.filter((s) => s.subject === subject);
    const ratio = (f: Figure, a: string, b: string, pick: (s: Sample) => number): number => {
      const rounds = Array.from({ length: ROUNDS }, (_, r) => {
        const x = of(f, a).find((s) => s.round === r);
        const y = of(f, b).find((s) => s.round === r);
        return x !== undefined && y !== undefined ? pick(x) / pick(y) : NaN;
      }).filter(Number.isFinite);
      return median(rounds);
    };
    const cpuPer = (f: Figure) => (s: Sample): number => (s.cpuMs !== undefined ? (s.cpuMs * f.cpuScale) / s.units : NaN);
    const summary: Record<string, unknown>[] = [];
    console.log(`\nHangar sidecar vs direct and its peers, loopback, ${ROUNDS} round(s), medians (node ${process.version}, load average ${loadBefore} → ${load()})`);
    for (const f of figures) {
      console.log(`\n${f.name} (${f.unit}; CPU per ${f.cpuUnit.split("/")[1]} from /proc)`);
      const rows = f.subjects.map((s) => {
        const xs = of(f, s.name);
        const rate = median(xs.map((x) => x.rate));
        const cpu = median(xs.map(cpuPer(f)));
        const p99 = median(xs.map((x) => x.p99Ms ?? NaN));
        const errors = xs.reduce((n, x) => n + x.errors, 0);
        const rateRatio = s.name === "sidecar" ? NaN : ratio(f, "sidecar", s.name, (x) => x.rate);
        const cpuRatio = s.name === "sidecar" || s.pid === undefined ? NaN : ratio(f, "sidecar", s.name, cpuPer(f));
        summary.push({ figure: f.name, unit: f.unit, cpuUnit: f.cpuUnit, subject: s.name, rate, cpu, p99Ms: p99, errors, sidecarRateRatio: rateRatio, sidecarCpuRatio: cpuRatio });
        const times = (x: number): string => (Number.isFinite(x) ? `${fmt(x)}×` : "");
        const note = errors > 0 ? `${errors} errors (first run: ${xs.find((x) => x.errors > 0)?.note ?? ""})` : (xs[0]?.note ?? "");
        return [s.name, fmtRate(rate), times(rateRatio), s.pid === undefined ? "" : `${fmt(cpu, f.cpuScale === 1 ? 3 : 1)} ${f.cpuUnit}`, times(cpuRatio), Number.isFinite(p99) ? `${fmt(p99)} ms` : "", note];
      });
      table(["subject", f.unit, "sidecar ÷ it", "CPU", "sidecar CPU ÷ it", "p99", "notes"], rows);
    }
    console.log("");
    table(
      ["idle RSS", "MB"],
      Object.entries(rss).map(([k, v]) => [k, fmt(v, 1)]),
    );
    const errors = [...samples.values()].flat().filter((s) => s.errors > 0 && !Number.isFinite(s.rate));
    if (errors.length > 0) console.log(`\nwarning: ${errors.length} run(s) failed; see the notes above`);

    if (flags.json !== undefined) {
      await writeFile(
        flags.json,
        `${JSON.stringify({ when: new Date().toISOString(), node: process.version, rounds: ROUNDS, runSeconds: RUN_S, streamBytes: STREAM_BYTES, loadavg: { before: loadBefore, after: load() }, idleRssMb: rss, summary, samples: Object.fromEntries(samples) }, null, 2)}\n`,
      );
    }
  } finally {
    await peers.close();
    await rig.close();
  }
}

await main();
