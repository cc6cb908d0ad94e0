/**
 * Where the time of a start goes, phase by phase: `hangar run --verbose` prints it, the
 * `sandbox-started` event carries it, and bench/sandbox.ts reports the medians.
 * Phases that overlap (started in parallel) are each timed from their own start.
 */
export class StartPhases {
  private readonly durations = new Map<string, number>();

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Runs `step` and records its duration under `name` (added to any earlier time of that name). */
  async time<T>(name: string, step: () => Promise<T>): Promise<T> {
    const started = this.clock();
    try {
      return await step();
    } finally {
      this.record(name, this.clock() - started);
    }
  }

  record(name: string, ms: number): void {
    this.durations.set(name, (this.durations.get(name) ?? 0) + ms);
  }

  /** Rounded to whole milliseconds, in the order the phases were first recorded. */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.durations].map(([name, ms]) => [name, Math.round(ms)]));
  }
}

/** "images 40 ms, network 120 ms, ..." */
export function formatPhases(phases: Readonly<Record<string, number>>): string {
  return Object.entries(phases)
    .map(([name, ms]) => `${name} ${ms} ms`)
    .join(", ");
}
