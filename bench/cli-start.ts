/**
 * How long the `hangar` process takes for its cheapest verbs, start to exit: `--help` and
 * `policy lint policies/everything.yaml` (target ≤ 150 ms median each), beside `node -e 0`,
 * which is the floor on this machine. Each case runs once to warm the file cache, then
 * `--runs` times, in rotated order so that a burst of load elsewhere hits every case alike.
 *
 *   node --import tsx bench/cli-start.ts [--runs 15] [--cli dist/cli/main.js] [--json out.json]
 *
 * Run `npm run build` first: the default measures the built (bundled) CLI, as `bin` runs it.
 *
 * Beside the wall time, each process's own CPU time (user + system, read at its exit by a
 * one-line preload that every case gets, the floor included): on a busy machine the wall
 * time mostly measures the wait for a core, the CPU time what the start costs.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { hangarPackageRoot } from "../src/images/package-root.js";
import { median } from "./load.js";

const ROOT = hangarPackageRoot();
const { values: flags } = parseArgs({ options: { runs: { type: "string" }, cli: { type: "string" }, json: { type: "string" } } });
const RUNS = Math.max(1, Number(flags.runs ?? 15));
const CLI = resolve(ROOT, flags.cli ?? "dist/cli/main.js");
const TARGET_MS = 150;

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  readonly target?: number;
}

const cases: readonly Case[] = [
  { name: "node -e 0 (floor)", args: ["-e", "0"] },
  { name: "hangar --help", args: [CLI, "--help"], target: TARGET_MS },
  { name: "hangar policy lint policies/everything.yaml", args: [CLI, "policy", "lint", join(ROOT, "policies/everything.yaml")], target: TARGET_MS },
];

/** Writes the process's CPU time (ms) on stderr as it exits. */
const CPU_PRELOAD =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>{const u=process.cpuUsage();writeSync(2,`\\n@cpu ${(u.user+u.system)/1000}\\n`)})';

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number;
}

function timeOnce(c: Case): Sample {
  const started = performance.now();
  const result = spawnSync(process.execPath, ["--import", CPU_PRELOAD, ...c.args], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const wallMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`${c.name} exited ${result.status}: ${result.stderr}`);
  const cpu = /@cpu ([\d.]+)/.exec(result.stderr)?.[1];
  if (cpu === undefined) throw new Error(`${c.name}: no CPU time reported`);
  return { wallMs, cpuMs: Number(cpu) };
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`no ${CLI}: run "npm run build" first`);
  const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`cli start: ${CLI}, ${RUNS} runs per case, load average ${load()}`);
  for (const c of cases) timeOnce(c);
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < RUNS; round++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(round + i) % cases.length]!;
      samples.get(c.name)!.push(timeOnce(c));
    }
  }
  const floorCpu = median(samples.get(cases[0]!.name)!.map((s) => s.cpuMs));
  const rows = cases.map((c) => {
    const times = samples.get(c.name)!.map((s) => s.wallMs);
    const cpu = median(samples.get(c.name)!.map((s) => s.cpuMs));
    const med = median(times);
    const verdict = c.target === undefined ? "" : med <= c.target ? `≤ ${c.target} ms: ok` : `≤ ${c.target} ms: OVER`;
    return { name: c.name, medianMs: Math.round(med), minMs: Math.round(Math.min(...times)), cpuMedianMs: Math.round(cpu), cpuOverFloorMs: Math.round(cpu - floorCpu), verdict };
  });
  const width = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(width)}  median ${String(r.medianMs).padStart(4)} ms  min ${String(r.minMs).padStart(4)} ms  cpu ${String(r.cpuMedianMs).padStart(4)} ms (+${r.cpuOverFloorMs} over the floor)  ${r.verdict}`,
    );
  }
  console.log(`load average after: ${load()}`);
  if (flags.json !== undefined) await writeFile(flags.json, `${JSON.stringify({ cli: CLI, runs: RUNS, results: rows }, null, 2)}\n`);
}

await main();
