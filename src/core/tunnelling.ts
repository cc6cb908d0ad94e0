/**
 * DNS tunnelling signals for names under a wildcard: an exfiltrator controls the labels
 * beneath the declared suffix, so whatever those labels can hold is what leaks. Three views:
 * one name (label length, random-looking text, the bits it can carry), the wildcard's last
 * minute (distinct names, and the bits they carry together), and the wildcard's lookup budget
 * (distinct names looked up upstream per window). The counts come from the sidecar's one
 * accounting of names (DNS, SNI, Host and CONNECT alike); this file only judges them.
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
  /** What one name can carry beneath the wildcard (`nameBits`): strong above max, weak above soft. */
  readonly maxBitsPerName: number;
  readonly softBitsPerName: number;
  /** The `nameBits` of the distinct names under one wildcard in the last minute, summed. */
  readonly maxBitsPerMinute: number;
  /** Distinct names under one wildcard the sidecar looks up upstream per budget window (the window is the sidecar's). */
  readonly lookupBudget: number;
}

export const DEFAULT_TUNNELLING_LIMITS: TunnellingLimits = {
  maxLabelLength: 40,
  softLabelLength: 24,
  maxEntropy: 3.9,
  softEntropy: 3.5,
  entropyMinLength: 16,
  maxUniqueSubdomainsPerMinute: 60,
  // 40 bytes: the longest real cloud names under a wide wildcard (an OpenSearch domain or an
  // S3 access point under *.amazonaws.com) come to 240-270.
  maxBitsPerName: 320,
  softBitsPerName: 192,
  // 1 KiB a minute: 40 distinct names of a typical 100 bits each still fit.
  maxBitsPerMinute: 8192,
  lookupBudget: 256,
};

/** What the sidecar counted for the wildcard a name falls under (the fields of `Attempt` of the same name). */
export interface NameRates {
  readonly uniqueSubdomainsPerMinute?: number;
  readonly subdomainBitsPerMinute?: number;
  readonly upstreamLookups?: number;
}

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

/**
 * An upper estimate of the information one name carries beneath its wildcard: the length of
 * the controlled part, dots included (where they fall is data too), times log2 of the number
 * of distinct characters it uses. Any encoding over those characters carries at most that,
 * plus which characters they are (log2 C(38, k), at most 35 bits), so a low alphabet or short
 * labels buy length, not bits: ten letters in 24-character labels count 3.46 bits a character.
 */
export function nameBits(controlledLabels: readonly string[]): number {
  const text = controlledLabels.join(".");
  let distinct = 0;
  const seen = new Set<string>();
  for (const ch of text) {
    if (seen.has(ch)) continue;
    seen.add(ch);
    distinct++;
  }
  return text.length * Math.log2(Math.max(distinct, 2));
}

// Hex carries at most 4 bits a character, while the thresholds are set for names over
// [a-z0-9] (log2 36 ≈ 5.17 bits), so a random hex blob almost never crossed them. Scale
// the thresholds to the hex alphabet; separators do not change the alphabet.
const HEX_ONLY = /^[0-9a-f]+$/;
const HEX_SCALE = 4 / Math.log2(36);
const DIGIT = /\d/;

export type StrongTunnellingSignal = "tunnel-long-label" | "tunnel-entropy" | "tunnel-bits" | "tunnel-unique-rate" | "tunnel-bits-rate" | "tunnel-budget";
export type WeakTunnellingSignal = "tunnel-long-label" | "tunnel-entropy" | "tunnel-bits";

export interface TunnellingSignals {
  readonly strong: StrongTunnellingSignal[];
  readonly weak: WeakTunnellingSignal[];
}

export function tunnellingSignals(controlledLabels: readonly string[], rates: NameRates, limits: TunnellingLimits): TunnellingSignals {
  const strong: StrongTunnellingSignal[] = [];
  const weak: WeakTunnellingSignal[] = [];
  if (controlledLabels.length === 0) return { strong, weak };
  const longest = Math.max(...controlledLabels.map((l) => l.length));
  if (longest > limits.maxLabelLength) strong.push("tunnel-long-label");
  else if (longest > limits.softLabelLength) weak.push("tunnel-long-label");

  // Random-looking text. The words and numbers of a real name mix into a high-entropy string
  // too ("my-company-backups-2024.s3.eu-central-1" is 4.2 bits a character), so the strong
  // signal reads only the tokens that hold a digit (ids, hashes, hex, base32/36) or run long
  // enough to judge alone; the weak signal still reads the whole controlled part.
  const tokens = controlledLabels.flatMap((l) => l.split(/[-_]/));
  const opaque = tokens.filter((t) => DIGIT.test(t) || t.length >= limits.entropyMinLength).join("");
  if (randomBeyond(opaque, limits.maxEntropy, limits)) strong.push("tunnel-entropy");
  else if (randomBeyond(controlledLabels.join(""), limits.softEntropy, limits)) weak.push("tunnel-entropy");

  const bits = nameBits(controlledLabels);
  if (bits > limits.maxBitsPerName) strong.push("tunnel-bits");
  else if (bits > limits.softBitsPerName) weak.push("tunnel-bits");

  if (rates.uniqueSubdomainsPerMinute !== undefined && rates.uniqueSubdomainsPerMinute > limits.maxUniqueSubdomainsPerMinute) strong.push("tunnel-unique-rate");
  if (rates.subdomainBitsPerMinute !== undefined && rates.subdomainBitsPerMinute > limits.maxBitsPerMinute) strong.push("tunnel-bits-rate");
  if (rates.upstreamLookups !== undefined && rates.upstreamLookups > limits.lookupBudget) strong.push("tunnel-budget");
  return { strong, weak };
}

/** Whether `text` is long enough to judge and its entropy passes `threshold` (scaled down for hex). */
function randomBeyond(text: string, threshold: number, limits: TunnellingLimits): boolean {
  let judged = text;
  const bare = text.replace(/[-_]/g, "");
  const scale = HEX_ONLY.test(bare) ? HEX_SCALE : 1;
  if (scale !== 1) judged = bare;
  return judged.length >= limits.entropyMinLength && shannonEntropy(judged) > threshold * scale;
}
