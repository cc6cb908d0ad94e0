import { createHash } from "node:crypto";

/** One hash of a Subresource Integrity string ("sha512-<base64>"). */
export interface SriHash {
  readonly algorithm: "sha256" | "sha384" | "sha512";
  readonly digest: string;
}

export function parseSri(text: string): SriHash[] {
  const out: SriHash[] = [];
  for (const token of text.trim().split(/\s+/)) {
    const m = /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+=*)(\?.*)?$/.exec(token);
    if (m) out.push({ algorithm: m[1] as SriHash["algorithm"], digest: m[2]! });
  }
  return out;
}

/**
 * Compares two integrity strings on the algorithms they share. `undefined` when they share
 * none (the caller must hash the bytes itself), else whether every shared one matches.
 */
export function sriAgree(a: string, b: string): boolean | undefined {
  const left = parseSri(a);
  const right = parseSri(b);
  let shared = 0;
  for (const l of left) {
    for (const r of right) {
      if (l.algorithm !== r.algorithm) continue;
      shared += 1;
      if (l.digest !== r.digest) return false;
    }
  }
  return shared === 0 ? undefined : true;
}

export function sriOf(bytes: Buffer, algorithm: SriHash["algorithm"]): string {
  return `${algorithm}-${createHash(algorithm).update(bytes).digest("base64")}`;
}
