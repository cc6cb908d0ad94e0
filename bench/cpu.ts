/**
 * CPU time of another process, read from /proc/<pid>/stat (Linux). CPU time spent per
 * request or per MB is far less sensitive to a busy machine than wall-clock ratios: a
 * process that waits for a core does not accrue it.
 */
import { readFileSync } from "node:fs";

/** Linux reports utime/stime in clock ticks; USER_HZ is 100 on every mainstream kernel. */
const TICK_MS = 10;

/** User + system CPU milliseconds `pid` has used so far, or undefined off Linux. */
export function cpuMsOf(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) * TICK_MS : undefined;
}

/** This process's own CPU milliseconds (microsecond resolution). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface CpuSpent {
  /** Per process name, CPU ms spent during the measured span. */
  readonly ms: Readonly<Record<string, number>>;
}

/** Measures the CPU each named process spends while `work` runs. */
export async function measureCpu<T>(pids: Readonly<Record<string, number>>, work: () => Promise<T>): Promise<{ result: T; cpu: CpuSpent }> {
  const before = snapshot(pids);
  const result = await work();
  const after = snapshot(pids);
  const ms: Record<string, number> = {};
  for (const name of Object.keys(after)) ms[name] = after[name]! - (before[name] ?? after[name]!);
  return { result, cpu: { ms } };
}

function snapshot(pids: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { client: selfCpuMs() };
  for (const [name, pid] of Object.entries(pids)) {
    const ms = cpuMsOf(pid);
    if (ms !== undefined) out[name] = ms;
  }
  return out;
}
