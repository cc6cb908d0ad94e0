/**
 * Connections per minute for each `name:port`, for the decision's rate-drift check. A ring
 * of coarse buckets per key keeps memory constant per key, and the key count is capped
 * (the oldest key goes first), so a flood of distinct names cannot grow it without bound.
 */
const BUCKETS = 12;
const WINDOW_MS = 60_000;
const BUCKET_MS = WINDOW_MS / BUCKETS;

interface Window {
  counts: Uint32Array;
  /** Epoch bucket number each slot holds. */
  slots: Float64Array;
}

export class ConnectionRate {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly now: () => number,
    private readonly maxKeys = 4096,
  ) {}

  /** Records one connection to `key` and returns the count over the last minute, this one included. */
  hit(key: string): number {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    let w = this.windows.get(key);
    if (w === undefined) {
      if (this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
      w = { counts: new Uint32Array(BUCKETS), slots: new Float64Array(BUCKETS).fill(-1) };
    } else {
      this.windows.delete(key); // re-insert below: Map order doubles as recency order
    }
    this.windows.set(key, w);
    const slot = bucket % BUCKETS;
    if (w.slots[slot] !== bucket) {
      w.slots[slot] = bucket;
      w.counts[slot] = 0;
    }
    w.counts[slot]! += 1;
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) if (w.slots[i]! > bucket - BUCKETS) total += w.counts[i]!;
    return total;
  }
}
