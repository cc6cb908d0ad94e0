import type { FrozenBaseline } from "./baseline-schema.js";
import { BaselineRecorder } from "./baseline-recorder.js";
import { detectDrift, type Drift, type DriftOptions } from "./drift.js";
import type { Observation } from "./observation.js";

/**
 * Drift over a live stream: fold observations as they come, and on `poll()` get the drifts
 * not reported before (one per code and subject, so a rate that keeps climbing is reported
 * once). The caller decides how often to poll; each poll re-runs the rules over the run so far.
 */
export class DriftWatch {
  private readonly recorder: BaselineRecorder;
  private readonly reported = new Set<string>();

  constructor(
    private readonly frozen: FrozenBaseline,
    private readonly options: DriftOptions & { readonly maxEntries?: number } = {},
  ) {
    this.recorder = new BaselineRecorder({ server: frozen.server, rateTolerance: frozen.rateTolerance, ...(options.maxEntries !== undefined ? { maxEntries: options.maxEntries } : {}) });
  }

  observe(o: Observation): boolean {
    return this.recorder.observe(o);
  }

  poll(): Drift[] {
    const fresh: Drift[] = [];
    for (const d of detectDrift(this.frozen, this.recorder.snapshot(), this.options)) {
      // Request drifts share their destination as subject: the route and field tell them apart.
      const r = d.request;
      const key = `${d.code}\u0000${d.kind}\u0000${d.subject}${r === undefined ? "" : `\u0000${r.method} ${r.path}\u0000${r.field?.place ?? ""} ${r.field?.name ?? ""}`}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      fresh.push(d);
    }
    return fresh;
  }
}
