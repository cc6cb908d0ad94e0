import type { Baseline } from "../core/baseline/baseline-schema.js";
import { serialiseBaseline } from "../core/baseline/canonical.js";
import { writeFileAtomic } from "./write-file-atomic.js";

/** Writes a baseline in its canonical form, atomically. */
export async function writeBaselineFile(path: string, baseline: Baseline): Promise<void> {
  await writeFileAtomic(path, serialiseBaseline(baseline));
}
