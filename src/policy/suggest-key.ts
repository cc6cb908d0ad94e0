/**
 * "Did you mean" for misspelt keys. Optimal string alignment distance: insertions,
 * deletions, substitutions and adjacent swaps (`egrses` → `egress`) each cost 1.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i]![j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The known key closest to `key`, if one is within `maxDistance` edits (case differences count). */
export function suggestKey(key: string, known: readonly string[], maxDistance = 2): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = Math.min(editDistance(key, candidate), editDistance(key.toLowerCase(), candidate.toLowerCase()) + 0.5);
    if (distance <= maxDistance && (best === undefined || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}
