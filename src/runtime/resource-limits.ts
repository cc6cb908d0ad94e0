import { HangarError } from "../core/errors.js";
import type { ResourceLimits } from "../docker/container-engine.js";

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "256m" → bytes (binary units, as Docker reads them). Undefined when unreadable. */
export function parseMemory(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(text.trim());
  if (m === null) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  return Number.isFinite(bytes) && bytes > 0 ? bytes : undefined;
}

export interface ResourceInput {
  readonly memory: string;
  readonly cpus: number;
  readonly pids: number;
}

/** Docker refuses less than 6 MiB of memory; so does Hangar, with a clearer message. */
const MIN_MEMORY = 6 * 1024 ** 2;

export function toLimits(input: ResourceInput): ResourceLimits {
  const memoryBytes = parseMemory(input.memory);
  if (memoryBytes === undefined || memoryBytes < MIN_MEMORY) {
    throw new HangarError("HANGAR_POLICY_INVALID", `memory ${JSON.stringify(input.memory)} is not a size of at least 6m`);
  }
  return { memoryBytes, nanoCpus: Math.round(input.cpus * 1e9), pids: input.pids };
}
