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

/** Per key, the live buckets as [epoch bucket number, count]: what a restart must not forget. */
export type ConnectionRateSnapshot = Readonly<Record<string, readonly (readonly [bucket: number, count: number])[]>>;

/** Keys kept in a snapshot, the most recently used first: it must fit one event line. */
const SNAPSHOT_KEYS = 256;

export class ConnectionRate {
  private readonly windows = new Map<string, Window>();
  private hits = 0;

  constructor(
    private readonly now: () => number,
    private readonly maxKeys = 4096,
  ) {}

  /** Records one connection to `key` and returns the count over the last minute, this one included. */
  hit(key: string): number {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    this.hits += 1;
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

  /** How many connections have been counted so far: it moves whenever a count did. */
  get version(): number {
    return this.hits;
  }

  /** The counts of the last minute for the most recently used keys (at most 256). */
  snapshot(): ConnectionRateSnapshot {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    const out: Record<string, [number, number][]> = {};
    const keys = [...this.windows.keys()].slice(-SNAPSHOT_KEYS);
    for (const key of keys) {
      const w = this.windows.get(key)!;
      const live: [number, number][] = [];
      for (let i = 0; i < BUCKETS; i++) if (w.slots[i]! > bucket - BUCKETS && w.counts[i]! > 0) live.push([w.slots[i]!, w.counts[i]!]);
      if (live.length > 0) out[key] = live.sort((x, y) => x[0] - y[0]);
    }
    return out;
  }

  /** Adds a snapshot's counts (a restart's) to this one's; buckets already out of the minute are skipped. */
  restore(snapshot: ConnectionRateSnapshot): void {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    for (const [key, live] of Object.entries(snapshot)) {
      let w = this.windows.get(key);
      if (w === undefined) {
        if (this.windows.size >= this.maxKeys) continue;
        w = { counts: new Uint32Array(BUCKETS), slots: new Float64Array(BUCKETS).fill(-1) };
        this.windows.set(key, w);
      }
      for (const [b, count] of live) {
        if (!(b > bucket - BUCKETS && b <= bucket) || !(count > 0)) continue;
        const slot = b % BUCKETS;
        if (w.slots[slot] !== b) {
          w.slots[slot] = b;
          w.counts[slot] = 0;
        }
        w.counts[slot]! += Math.min(count, 0xffffffff - w.counts[slot]!);
      }
    }
  }
}
