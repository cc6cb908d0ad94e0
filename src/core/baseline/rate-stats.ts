/**
 * Per-minute rates from timestamps. Counts are kept per 5-second slice, the bucket size of
 * the sidecar's live `ConnectionRate`, so a baseline's `max` means what the sidecar measures
 * at run time: the most events in any 60-second window (12 consecutive slices). A burst that
 * straddles a minute boundary is therefore not halved. `mean` and `p95` are taken over fixed
 * UTC minutes of the whole observation window, idle minutes included.
 */
export const MINUTE_MS = 60_000;
export const SLICE_MS = 5_000;
const SLICES_PER_MINUTE = MINUTE_MS / SLICE_MS;

export interface MinuteWindow {
  /** Epoch minute numbers, inclusive. */
  readonly firstMinute: number;
  readonly lastMinute: number;
}

export interface RateStats {
  readonly mean: number;
  readonly p95: number;
  readonly max: number;
}

export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);

export function windowMinutes(window: MinuteWindow | undefined): number {
  return window === undefined ? 0 : window.lastMinute - window.firstMinute + 1;
}

/** Sparse counts: memory grows with the slices that saw traffic, not with the window. */
export class RateCounter {
  private readonly slices = new Map<number, number>();

  hit(ms: number): void {
    const slice = Math.floor(ms / SLICE_MS);
    this.slices.set(slice, (this.slices.get(slice) ?? 0) + 1);
  }

  /** The most hits in any 60-second window, as the sidecar counts "per minute". */
  maxPerMinute(): number {
    const slices = [...this.slices.entries()].sort((a, b) => a[0] - b[0]);
    let best = 0;
    let sum = 0;
    let tail = 0;
    for (const [slice, hits] of slices) {
      sum += hits;
      while (slices[tail]![0] <= slice - SLICES_PER_MINUTE) sum -= slices[tail++]![1];
      best = Math.max(best, sum);
    }
    return best;
  }

  /** Hits per UTC minute, for minutes that saw any. */
  minuteCounts(): number[] {
    const minutes = new Map<number, number>();
    for (const [slice, hits] of this.slices) {
      const minute = Math.floor(slice / SLICES_PER_MINUTE);
      minutes.set(minute, (minutes.get(minute) ?? 0) + hits);
    }
    return [...minutes.values()];
  }

  stats(window: MinuteWindow | undefined): RateStats {
    const active = this.minuteCounts();
    const total = active.reduce((a, b) => a + b, 0);
    const minutes = Math.max(windowMinutes(window), active.length);
    if (minutes === 0) return { mean: 0, p95: 0, max: 0 };
    return { mean: Math.round((total / minutes) * 100) / 100, p95: percentileWithIdle(active, minutes, 0.95), max: this.maxPerMinute() };
  }
}

/**
 * Nearest-rank percentile of `minutes` values, of which `active` are listed and the rest
 * are idle minutes (zero), without materialising the zeros.
 */
export function percentileWithIdle(active: readonly number[], minutes: number, p: number): number {
  if (minutes === 0) return 0;
  const sorted = [...active].sort((a, b) => a - b);
  const idle = minutes - sorted.length;
  const rank = Math.max(1, Math.ceil(p * minutes));
  return rank <= idle ? 0 : (sorted[rank - idle - 1] ?? 0);
}
