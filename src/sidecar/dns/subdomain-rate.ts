/**
 * Distinct names seen under each wildcard suffix in a sliding window: a tunnel over DNS
 * needs a fresh name per chunk, so this count climbs where a normal client's stays flat.
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

export class SubdomainRate {
  // suffix → (name → last seen); each inner Map is kept in last-seen order.
  private readonly bySuffix = new Map<string, Map<string, number>>();
  private readonly windowMs: number;
  private readonly maxNames: number;
  private readonly maxSuffixes: number;

  constructor(private readonly options: SubdomainRateOptions) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxNames = Math.max(1, options.maxNamesPerSuffix ?? 4096);
    this.maxSuffixes = Math.max(1, options.maxSuffixes ?? 256);
  }

  /** Records `name` under `suffix` and returns the distinct names in the window, this one included. */
  observe(suffix: string, name: string): number {
    const now = this.options.now();
    let names = this.bySuffix.get(suffix);
    if (names === undefined) {
      names = new Map();
      this.bySuffix.set(suffix, names);
      this.evictSuffixes();
    } else {
      // Keep suffixes in last-used order too, so eviction drops the stalest.
      this.bySuffix.delete(suffix);
      this.bySuffix.set(suffix, names);
    }
    names.delete(name);
    names.set(name, now);
    this.expire(names, now);
    while (names.size > this.maxNames) {
      const oldest = names.keys().next();
      if (oldest.done === true) break;
      names.delete(oldest.value);
    }
    return names.size;
  }

  /** Distinct names under `suffix` in the window, without recording anything. */
  count(suffix: string): number {
    const names = this.bySuffix.get(suffix);
    if (names === undefined) return 0;
    this.expire(names, this.options.now());
    return names.size;
  }

  private expire(names: Map<string, number>, now: number): void {
    for (const [n, seen] of names) {
      if (now - seen < this.windowMs) break;
      names.delete(n);
    }
  }

  private evictSuffixes(): void {
    for (const suffix of this.bySuffix.keys()) {
      if (this.bySuffix.size <= this.maxSuffixes) break;
      this.bySuffix.delete(suffix);
    }
  }
}
