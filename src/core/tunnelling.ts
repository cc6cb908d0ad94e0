/**
 * DNS tunnelling signals for names under a wildcard: an exfiltrator controls the labels
 * beneath the declared suffix, so long or random-looking labels there carry data.
 */
export interface TunnellingLimits {
  /** A label longer than this is a strong signal. */
  readonly maxLabelLength: number;
  /** A label longer than this is a weak signal (flag only). */
  readonly softLabelLength: number;
  /** Shannon entropy (bits/char) over the controlled part, when it is at least `entropyMinLength` long. */
  readonly maxEntropy: number;
  readonly softEntropy: number;
  readonly entropyMinLength: number;
  /** Distinct new subdomains under one wildcard per minute. */
  readonly maxUniqueSubdomainsPerMinute: number;
}

export const DEFAULT_TUNNELLING_LIMITS: TunnellingLimits = {
  maxLabelLength: 40,
  softLabelLength: 24,
  maxEntropy: 3.9,
  softEntropy: 3.5,
  entropyMinLength: 16,
  maxUniqueSubdomainsPerMinute: 60,
};

export function shannonEntropy(text: string): number {
  const counts = new Map<string, number>();
  let total = 0;
  // Count code points on both sides: text.length counts UTF-16 units.
  for (const ch of text) {
    counts.set(ch, (counts.get(ch) ?? 0) + 1);
    total++;
  }
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h;
}

// Hex carries at most 4 bits a character, while the thresholds are set for names over
// [a-z0-9] (log2 36 ≈ 5.17 bits), so a random hex blob almost never crossed them. Scale
// the thresholds to the hex alphabet; separators do not change the alphabet.
const HEX_ONLY = /^[0-9a-f]+$/;
const HEX_SCALE = 4 / Math.log2(36);

export interface TunnellingSignals {
  readonly strong: ("tunnel-long-label" | "tunnel-entropy" | "tunnel-unique-rate")[];
  readonly weak: ("tunnel-long-label" | "tunnel-entropy")[];
}

export function tunnellingSignals(controlledLabels: readonly string[], uniquePerMinute: number | undefined, limits: TunnellingLimits): TunnellingSignals {
  const strong: TunnellingSignals["strong"] = [];
  const weak: TunnellingSignals["weak"] = [];
  if (controlledLabels.length === 0) return { strong, weak };
  const longest = Math.max(...controlledLabels.map((l) => l.length));
  if (longest > limits.maxLabelLength) strong.push("tunnel-long-label");
  else if (longest > limits.softLabelLength) weak.push("tunnel-long-label");
  let joined = controlledLabels.join("");
  const bare = joined.replace(/[-_]/g, "");
  const scale = HEX_ONLY.test(bare) ? HEX_SCALE : 1;
  if (scale !== 1) joined = bare;
  if (joined.length >= limits.entropyMinLength) {
    const h = shannonEntropy(joined);
    if (h > limits.maxEntropy * scale) strong.push("tunnel-entropy");
    else if (h > limits.softEntropy * scale) weak.push("tunnel-entropy");
  }
  if (uniquePerMinute !== undefined && uniquePerMinute > limits.maxUniqueSubdomainsPerMinute) strong.push("tunnel-unique-rate");
  return { strong, weak };
}
