/**
 * What the sidecar's idle memory is made of, per node flag set, side by side in one run on
 * loopback (bench/rig.ts: upstreams and the sidecar's upstream DNS are ours). Each variant
 * is one sidecar process; after it starts, and again after a burst of DNS queries and a
 * settle, it reports VmRSS, RssAnon (heap, stacks, JIT code: this process's own) and RssFile
 * (the mapped node binary and libraries: shared page cache with every other node process).
 *
 *   node --import tsx bench/sidecar-memory.ts [--sidecar dist/sidecar/main.js] [--json out.json]
 *         [--flags=none --flags="--max-semi-space-size=1" ...]   (each --flags value is one variant)
 */
import { createSocket } from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import dnsPacket from "dns-packet";
import { ROOT, Rig, progress } from "./rig.js";

const { values: flags } = parseArgs({
  options: { sidecar: { type: "string" }, json: { type: "string" }, flags: { type: "string", multiple: true }, settle: { type: "string" } },
  strict: true,
});
const main = resolvePath(ROOT, flags.sidecar ?? "dist/sidecar/main.js");
const SETTLE_MS = Number(flags.settle ?? 3000);
const VARIANTS: string[][] = (flags.flags ?? ["none", "--single-threaded", "--max-semi-space-size=1", "--max-semi-space-size=1 --v8-pool-size=1", "--max-semi-space-size=1 --lite-mode"]).map((f) =>
  f.split(/\s+/).filter((x) => x.length > 0 && x !== "none"),
);

interface Memory {
  vmRssMb: number;
  anonMb: number;
  fileMb: number;
}

function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status: no ${field} line`);
    return Number(m[1]) / 1024;
  };
  return { vmRssMb: kb("VmRSS"), anonMb: kb("RssAnon"), fileMb: kb("RssFile") };
}

/** `count` A queries for the declared name, one at a time, on loopback. */
async function dnsBurst(port: number, count: number): Promise<void> {
  const udp = createSocket("udp4");
  try {
    for (let i = 0; i < count; i++) {
      const answered = new Promise<void>((resolve) => udp.once("message", () => resolve()));
      udp.send(dnsPacket.encode({ type: "query", id: i & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: "api.bench.test" }] }), port, "127.0.0.1");
      await answered;
    }
  } finally {
    udp.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (x: number): string => x.toFixed(1);

const rig = await Rig.start({ streamBytes: 1 << 20 });
const rows: { flags: string; idle: Memory; afterDns: Memory }[] = [];
try {
  progress(`sidecar ${main}; ${VARIANTS.length} variants, settle ${SETTLE_MS} ms`);
  const running = [];
  for (const nodeFlags of VARIANTS) running.push({ nodeFlags, sidecar: await rig.sidecar({ main, nodeFlags, freePorts: true, discardEvents: true }) });
  await sleep(SETTLE_MS);
  const idle = running.map((r) => memory(r.sidecar.pid));
  for (const r of running) await dnsBurst(r.sidecar.dnsPort, 5000);
  await sleep(SETTLE_MS);
  running.forEach((r, i) => rows.push({ flags: r.nodeFlags.join(" ") || "(none)", idle: idle[i]!, afterDns: memory(r.sidecar.pid) }));
} finally {
  await rig.close();
}
console.log(`sidecar memory (${main}, node ${process.version}); MB: VmRSS = RssAnon + RssFile (+ shmem)`);
console.log(["node flags".padEnd(48), "idle RSS", "anon", "file", "| after 5k DNS", "anon", "file"].join("  "));
for (const r of rows) {
  console.log([r.flags.padEnd(48), fmt(r.idle.vmRssMb).padStart(8), fmt(r.idle.anonMb).padStart(4), fmt(r.idle.fileMb).padStart(4), fmt(r.afterDns.vmRssMb).padStart(15), fmt(r.afterDns.anonMb).padStart(4), fmt(r.afterDns.fileMb).padStart(4)].join("  "));
}
if (flags.json !== undefined) writeFileSync(flags.json, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, main, rows }, null, 2)}\n`);
