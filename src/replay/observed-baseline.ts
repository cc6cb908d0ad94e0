import { BaselineRecorder } from "../core/baseline/baseline-recorder.js";
import type { Baseline } from "../core/baseline/baseline-schema.js";
import type { ScenarioRun } from "./scenario-session.js";

/**
 * A scenario run as a (learning) baseline: each call at its start, each attributed event.
 * What `baseline record` writes, and what `replay` compares with the frozen one. Pure.
 */
export function observedBaseline(run: ScenarioRun, options: { readonly rateTolerance?: number } = {}): { baseline: Baseline; ignored: number } {
  const recorder = new BaselineRecorder({ server: run.server, ...(options.rateTolerance !== undefined ? { rateTolerance: options.rateTolerance } : {}) });
  for (const call of run.calls) recorder.recordToolCall(call.tool, call.startedAt);
  for (const event of run.events) recorder.recordEvent(event);
  return { baseline: recorder.snapshot(), ignored: recorder.ignored };
}
