/**
 * Inspected TLS (`inspect: true`) against a direct connection, side by side in one run, on
 * loopback: the sidecar terminates TLS with a sandbox CA, decides each request, and re-makes
 * TLS to the upstream with full verification. Two figures, each a ratio to direct:
 *   - bulk throughput: one GET of N MiB over a fresh TLS connection;
 *   - per-request latency on a warm keep-alive connection: sequential small GETs, p50 and p99.
 * Plus the sidecar's CPU per MB and per request from /proc. Cases run in a rotated order.
 *
 * With `socat` installed (apt-get install socat), two peers run beside them, as what any
 * userspace hop costs on this machine: socat terminating TLS with its own leaf and re-making
 * TLS to the upstream (verified), in C with OpenSSL; and socat relaying the TCP bytes with
 * TLS end to end (no TLS work in the hop at all: the ceiling of any proxy on this rig).
 *
 *   node --import tsx bench/inspect.ts [--quick] [--rounds N] [--only bulk|latency] [--json out.json] [--sidecar path/to/main.js] [--profile dir] [--node-flags "--flag ..."]
 *
 * --only runs one half (a profile of the sidecar under bulk load alone, say); --sidecar runs a
 * built main.js instead of building src/ (two builds measured back to back).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import https from "node:https";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { createSandboxCa } from "../src/sidecar/proxy/tls/sandbox-ca.js";
import { measureCpu, type CpuSpent } from "./cpu.js";
import { median } from "./load.js";
import { buildSidecar, imageNodeFlags, progress, Rig } from "./rig.js";
import { makeTestPki } from "../test/support/tls.js";

const { values: flags } = parseArgs({
  options: { quick: { type: "boolean" }, rounds: { type: "string" }, json: { type: "string" }, sidecar: { type: "string" }, profile: { type: "string" }, "node-flags": { type: "string" }, only: { type: "string" } },
});
const quick = flags.quick === true;
const ROUNDS = flags.rounds !== undefined ? Math.max(1, Number(flags.rounds)) : quick ? 1 : 3;
const BULK_BYTES = (quick ? 64 : 256) * 1024 * 1024;
const REQUESTS = quick ? 500 : 2000;
const NAME = "inspect.bench.test";
if (flags.only !== undefined && flags.only !== "bulk" && flags.only !== "latency") throw new Error(`--only: expected bulk or latency, got ${JSON.stringify(flags.only)}`);
const runBulk = flags.only !== "latency";
const runLatency = flags.only !== "bulk";

interface Target {
  readonly host: string;
  readonly port: number;
  readonly ca: string;
}

/** One GET of `bytes` on a fresh connection: MB/s. */
function bulk(t: Target, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = https.get({ host: t.host, port: t.port, servername: NAME, headers: { host: NAME }, path: `/bytes/${bytes}`, ca: t.ca, agent: false }, (res) => {
      let got = 0;
      res.on("data", (d: Buffer) => (got += d.length));
      res.once("end", () => {
        if (got !== bytes) return reject(new Error(`got ${got} of ${bytes} bytes (status ${res.statusCode})`));
        resolve(got / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9));
      });
      res.once("error", reject);
    });
    req.once("error", reject);
  });
}

/** Sequential small GETs on one warm keep-alive connection: latency in ms, per request. */
async function latencies(t: Target, n: number): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: t.ca });
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = https.get({ host: t.host, port: t.port, servername: NAME, headers: { host: NAME }, path: "/small", agent }, (res) => {
        res.resume();
        res.once("end", () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
      });
      req.once("error", reject);
    });
  try {
    for (let i = 0; i < 50; i++) await one(); // warm: handshake, leaf, JIT
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await one());
    return out;
  } finally {
    agent.destroy();
  }
}

/** A free loopback port (listened on and closed: the peer binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** The socat peers, when socat is installed: targets keyed by case name, and their processes. */
async function socatPeers(dir: string, upstream: { port: number; caFile: string; caCert: string }): Promise<{ targets: Record<string, Target>; children: ChildProcess[] }> {
  if (spawnSync("socat", ["-V"], { stdio: "ignore" }).status !== 0) {
    progress("socat is not installed: no peer cases (apt-get install socat)");
    return { targets: {}, children: [] };
  }
  const pki = await makeTestPki([NAME]);
  const files = { cert: join(dir, "socat-leaf.crt"), key: join(dir, "socat-leaf.key") };
  await writeFile(files.cert, pki.cert);
  await writeFile(files.key, pki.key, { mode: 0o600 });
  const [tlsPort, tcpPort] = [await freePort(), await freePort()];
  const upstreamAddress = `127.0.0.2:${upstream.port}`;
  const specs = [
    ["-b", "65536", `OPENSSL-LISTEN:${tlsPort},bind=127.0.0.1,reuseaddr,fork,cert=${files.cert},key=${files.key},verify=0`, `OPENSSL:${upstreamAddress},cafile=${upstream.caFile},commonname=${NAME},snihost=${NAME}`],
    ["-b", "65536", `TCP-LISTEN:${tcpPort},bind=127.0.0.1,reuseaddr,fork`, `TCP:${upstreamAddress}`],
  ];
  const children = specs.map((args) => spawn("socat", args, { stdio: ["ignore", "ignore", "inherit"] }));
  // socat binds at once; a moment for both to listen.
  await new Promise((r) => setTimeout(r, 300));
  return {
    targets: {
      "socat-tls": { host: "127.0.0.1", port: tlsPort, ca: pki.caCert },
      "socat-tcp": { host: "127.0.0.1", port: tcpPort, ca: upstream.caCert },
    },
    children,
  };
}

const pct = (xs: readonly number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  progress(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}; starting upstreams on 127.0.0.2`);
  const rig = await Rig.start({ streamBytes: 1024 });
  const peerChildren: ChildProcess[] = [];
  try {
    const ca = await createSandboxCa({ name: "bench", now: Date.now() });
    const files = { cert: join(rig.dir, "ca.crt"), key: join(rig.dir, "ca.key"), upstream: join(rig.dir, "upstream-ca.pem") };
    await writeFile(files.cert, ca.certPem);
    await writeFile(files.key, ca.keyPem, { mode: 0o600 });
    await writeFile(files.upstream, rig.upstreams.caCert);
    const main = flags.sidecar !== undefined ? resolvePath(flags.sidecar) : await buildSidecar();
    const extraFlags = (flags["node-flags"] ?? "").split(" ").filter((f) => f.length > 0);
    const nodeFlags = [...imageNodeFlags(), ...extraFlags, ...(flags.profile !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${resolvePath(flags.profile)}`] : [])];
    const sidecar = await rig.sidecar({ main, nodeFlags, discardEvents: true, config: { tls: { ca: { certFile: files.cert, keyFile: files.key }, upstreamCaFile: files.upstream } } });
    const pids = { sidecar: sidecar.pid, upstreams: rig.upstreamPid };
    const port = rig.upstreams.httpsPort;
    const peers = await socatPeers(rig.dir, { port, caFile: files.upstream, caCert: rig.upstreams.caCert });
    peerChildren.push(...peers.children);
    const targets: Record<string, Target> = {
      direct: { host: "127.0.0.2", port, ca: rig.upstreams.caCert },
      inspected: { host: "127.0.0.1", port: sidecar.transparent.get(port) ?? port, ca: ca.certPem },
      ...peers.targets,
    };
    const keys = Object.keys(targets);
    const bulkRuns: Record<string, { mbps: number; cpu: CpuSpent }[]> = Object.fromEntries(keys.map((k) => [k, []]));
    const latRuns: Record<string, { p50: number; p99: number; cpu: CpuSpent }[]> = Object.fromEntries(keys.map((k) => [k, []]));
    // Untimed, once per case: JIT, the leaf certificate and pooled upstream connections are warm
    // before the first timed round, so rounds differ by load only.
    for (const k of keys) {
      if (runBulk) await bulk(targets[k]!, 16 * 1024 * 1024);
      if (runLatency) await latencies(targets[k]!, 50);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = keys.map((_, i) => keys[(i + round) % keys.length]!);
      progress(`round ${round + 1}/${ROUNDS}: bulk ${BULK_BYTES / 1024 / 1024} MiB and ${REQUESTS} warm requests each`);
      for (const k of order) {
        if (runBulk) {
          const b = await measureCpu(pids, () => bulk(targets[k]!, BULK_BYTES));
          bulkRuns[k]!.push({ mbps: b.result, cpu: b.cpu });
        }
        if (runLatency) {
          const l = await measureCpu(pids, () => latencies(targets[k]!, REQUESTS));
          latRuns[k]!.push({ p50: pct(l.result, 0.5), p99: pct(l.result, 0.99), cpu: l.cpu });
        }
      }
    }
    const mbps = (k: string): number => median(bulkRuns[k]!.map((r) => r.mbps));
    const p50 = (k: string): number => median(latRuns[k]!.map((r) => r.p50));
    const p99 = (k: string): number => median(latRuns[k]!.map((r) => r.p99));
    const ratioOf = (k: string): number => median(bulkRuns[k]!.map((r, i) => r.mbps / bulkRuns["direct"]![i]!.mbps));
    const ratio = ratioOf("inspected");
    const msPerMb = (k: string, proc: string): number => median(bulkRuns[k]!.map((r) => (r.cpu.ms[proc] ?? 0) / (BULK_BYTES / 1e6)));
    const sidecarMsPerMb = msPerMb("inspected", "sidecar");
    // What the two ends spend per MB in each case: on a 2-core machine, the three processes of
    // the inspected case share the cores that the two of the direct case had.
    const endsMsPerMb = { direct: msPerMb("direct", "client") + msPerMb("direct", "upstreams"), inspected: msPerMb("inspected", "client") + msPerMb("inspected", "upstreams") };
    const sidecarUsPerReq = median(latRuns["inspected"]!.map((r) => ((r.cpu.ms["sidecar"] ?? 0) * 1000) / (REQUESTS + 50)));
    const result = {
      bulk: { directMBps: mbps("direct"), inspectedMBps: mbps("inspected"), ratio, sidecarCpuMsPerMB: sidecarMsPerMb, clientAndUpstreamCpuMsPerMB: endsMsPerMb, target: ">= 0.7 of direct" },
      latency: {
        directP50Ms: p50("direct"),
        inspectedP50Ms: p50("inspected"),
        addedP50Ms: p50("inspected") - p50("direct"),
        directP99Ms: p99("direct"),
        inspectedP99Ms: p99("inspected"),
        addedP99Ms: p99("inspected") - p99("direct"),
        sidecarCpuUsPerRequest: sidecarUsPerReq,
        target: "<= 2 ms added at p50",
      },
      peers: Object.fromEntries(
        Object.keys(peers.targets).map((k) => [k, { ...(runBulk ? { bulkMBps: mbps(k), ratioToDirect: ratioOf(k), inspectedToPeer: mbps("inspected") / mbps(k) } : {}), ...(runLatency ? { p50Ms: p50(k), addedP50Ms: p50(k) - p50("direct") } : {}) }]),
      ),
      rounds: ROUNDS,
      load: loadavg(),
    };
    const f = (x: number, d = 2): string => x.toFixed(d);
    console.log(`\ninspected TLS vs direct (${ROUNDS} round(s), medians)`);
    if (runBulk)
      console.log(
        `  bulk ${BULK_BYTES / 1024 / 1024} MiB: direct ${f(result.bulk.directMBps, 0)} MB/s, inspected ${f(result.bulk.inspectedMBps, 0)} MB/s = ${f(ratio)}x direct (target >= 0.70); ` +
          `sidecar ${f(sidecarMsPerMb, 3)} ms CPU/MB (client + upstream: direct ${f(endsMsPerMb.direct, 3)}, inspected ${f(endsMsPerMb.inspected, 3)} ms CPU/MB)`,
      );
    if (runLatency)
      console.log(
        `  warm request: p50 ${f(result.latency.directP50Ms, 3)} -> ${f(result.latency.inspectedP50Ms, 3)} ms (+${f(result.latency.addedP50Ms, 3)}, target <= 2), ` +
          `p99 ${f(result.latency.directP99Ms, 3)} -> ${f(result.latency.inspectedP99Ms, 3)} ms; sidecar ${f(sidecarUsPerReq, 0)} us CPU/request`,
      );
    for (const [k, peer] of Object.entries(result.peers)) {
      const what = k === "socat-tls" ? "socat terminating and re-making TLS (C, OpenSSL)" : "socat relaying TCP, TLS end to end (no TLS work in the hop)";
      const parts = [
        ...(runBulk ? [`bulk ${f(peer.bulkMBps ?? 0, 0)} MB/s = ${f(peer.ratioToDirect ?? 0)}x direct; inspected = ${f(peer.inspectedToPeer ?? 0)}x this peer`] : []),
        ...(runLatency ? [`warm p50 ${f(peer.p50Ms ?? 0, 3)} ms (+${f(peer.addedP50Ms ?? 0, 3)})`] : []),
      ];
      console.log(`  peer ${k}, ${what}: ${parts.join("; ")}`);
    }
    if (flags.json !== undefined) await writeFile(flags.json, JSON.stringify(result, null, 2));
  } finally {
    for (const c of peerChildren) c.kill("SIGTERM");
    await rig.close();
  }
}

await main();
