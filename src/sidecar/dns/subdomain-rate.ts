/**
 * Distinct names seen under each wildcard suffix in a sliding window: a tunnel over DNS
 * needs a fresh name per chunk, so this count climbs where a normal client's stays flat.
 * Each name may carry a weight (the bits it can hold), summed over the window too.
 * Memory is bounded per suffix and in suffixes; at the cap the count saturates (it stays
 * at the cap, far above any sane limit) rather than growing.
 */
export interface SubdomainRateOptions {
  /** Epoch ms; tests pass a fake clock. */
  readonly now: () => number;
  /** Default 60 000 (the decision's limit is per minute). */
  readonly windowMs?: number;
  /** Distinct names remembered per suffix. Default 4096. */
  readonly maxNamesPerSuffix?: number;
  /** Suffixes tracked at once (a reload can change the policy's wildcards). Default 256. */
  readonly maxSuffixes?: number;
}

interface Seen {
  at: number;
  weight: number;
}

/**
 * The window's contents without the names: per second, how many names were seen and the
 * bits they carried. Restored, each becomes an anonymous entry that counts and weighs
 * like the name it stands for until it expires; a name asked again after a restore counts
 * once more, which errs towards the limits, never away from them.
 */
export type RateSnapshot = Readonly<Record<string, readonly (readonly [atSecond: number, count: number, weight: number])[]>>;

interface SuffixNames {
  readonly names: Map<string, Seen>;
  weight: number;
}

export class SubdomainRate {
  // suffix → (name → last seen); each inner Map is kept in last-seen order.
  private readonly bySuffix = new Map<string, SuffixNames>();
  private readonly windowMs: number;
  private readonly maxNames: number;
  private readonly maxSuffixes: number;
  private recorded = 0;

  constructor(private readonly options: SubdomainRateOptions) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxNames = Math.max(1, options.maxNamesPerSuffix ?? 4096);
    this.maxSuffixes = Math.max(1, options.maxSuffixes ?? 256);
  }

  /** Records `name` (with its `weight`) under `suffix` and returns the distinct names in the window, this one included. */
  observe(suffix: string, name: string, weight = 0): number {
    const now = this.options.now();
    this.recorded += 1;
    let entry = this.bySuffix.get(suffix);
    if (entry === undefined) {
      entry = { names: new Map(), weight: 0 };
      this.bySuffix.set(suffix, entry);
      this.evictSuffixes();
    } else {
      // Keep suffixes in last-used order too, so eviction drops the stalest.
      this.bySuffix.delete(suffix);
      this.bySuffix.set(suffix, entry);
    }
    const { names } = entry;
    const before = names.get(name);
    if (before !== undefined) {
      names.delete(name);
      entry.weight -= before.weight;
    }
    names.set(name, { at: now, weight });
    entry.weight += weight;
    this.expire(entry, now);
    while (names.size > this.maxNames) {
      const oldest = names.entries().next();
      if (oldest.done === true) break;
      names.delete(oldest.value[0]);
      entry.weight -= oldest.value[1].weight;
    }
    return names.size;
  }

  /** How many names have been recorded so far: it moves whenever the window gained something. */
  get version(): number {
    return this.recorded;
  }

  /** Distinct names under `suffix` in the window, without recording anything. */
  count(suffix: string): number {
    const entry = this.bySuffix.get(suffix);
    if (entry === undefined) return 0;
    this.expire(entry, this.options.now());
    return entry.names.size;
  }

  /** The summed weights of the names under `suffix` in the window. */
  weight(suffix: string): number {
    const entry = this.bySuffix.get(suffix);
    if (entry === undefined) return 0;
    this.expire(entry, this.options.now());
    return entry.weight;
  }

  /** Whether `name` is in the window under `suffix`, without recording anything. */
  has(suffix: string, name: string): boolean {
    const entry = this.bySuffix.get(suffix);
    if (entry === undefined) return false;
    this.expire(entry, this.options.now());
    return entry.names.has(name);
  }

  /** What the window holds now, grouped per second and without names (see RateSnapshot). */
  snapshot(): RateSnapshot {
    const now = this.options.now();
    const out: Record<string, [number, number, number][]> = {};
    for (const [suffix, entry] of this.bySuffix) {
      this.expire(entry, now);
      const groups: [number, number, number][] = [];
      for (const seen of entry.names.values()) {
        // Rounded up: a restored entry never leaves the window before the name it stands for.
        const second = Math.ceil(seen.at / 1000);
        const last = groups.at(-1);
        if (last !== undefined && last[0] === second) {
          last[1] += 1;
          last[2] += seen.weight;
        } else groups.push([second, 1, seen.weight]);
      }
      if (groups.length > 0) out[suffix] = groups.map(([t, n, w]) => [t, n, Math.ceil(w * 100) / 100]);
    }
    return out;
  }

  /**
   * Adds a snapshot's entries (a restart's counts) to this window, as anonymous entries
   * older than anything recorded here since. Entries already expired are skipped; the
   * per-suffix bound holds as for any name.
   */
  restore(snapshot: RateSnapshot): void {
    let serial = 0;
    for (const [suffix, groups] of Object.entries(snapshot)) {
      const restored = new Map<string, Seen>();
      let weight = 0;
      for (const [second, count, total] of groups) {
        const at = second * 1000;
        for (let i = 0; i < count && restored.size < this.maxNames; i++) {
          // A key no host name can equal: it holds the place of a name never written down.
          restored.set(`\u0000${serial++}`, { at, weight: total / count });
          weight += total / count;
        }
      }
      const entry = this.bySuffix.get(suffix);
      if (entry !== undefined) {
        for (const [name, seen] of entry.names) {
          restored.set(name, seen);
          weight += seen.weight;
        }
      }
      const merged: SuffixNames = { names: restored, weight };
      this.bySuffix.delete(suffix);
      this.bySuffix.set(suffix, merged);
      this.expire(merged, this.options.now());
      while (merged.names.size > this.maxNames) {
        const oldest = merged.names.entries().next();
        if (oldest.done === true) break;
        merged.names.delete(oldest.value[0]);
        merged.weight -= oldest.value[1].weight;
      }
      this.evictSuffixes();
    }
  }

  private expire(entry: SuffixNames, now: number): void {
    for (const [n, seen] of entry.names) {
      if (now - seen.at < this.windowMs) break;
      entry.names.delete(n);
      entry.weight -= seen.weight;
    }
    // Sums of floats drift: an empty window weighs exactly nothing.
    if (entry.names.size === 0) entry.weight = 0;
  }

  private evictSuffixes(): void {
    for (const suffix of this.bySuffix.keys()) {
      if (this.bySuffix.size <= this.maxSuffixes) break;
      this.bySuffix.delete(suffix);
    }
  }
}
