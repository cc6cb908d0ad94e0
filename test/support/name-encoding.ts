/**
 * What an exfiltrator would put in DNS names: data written in some alphabet, cut into labels.
 * Shared by the tunnelling unit tests and the loopback floods.
 */

/** `bytes` written in base `alphabet.length` over `alphabet`, cut into labels of `labelLength`. */
export function encodeLabels(bytes: Buffer, alphabet: string, labelLength: number): string[] {
  let n = BigInt(`0x${bytes.toString("hex") || "0"}`);
  const base = BigInt(alphabet.length);
  let text = "";
  while (n > 0n) {
    text = alphabet[Number(n % base)]! + text;
    n /= base;
  }
  if (text === "") text = alphabet[0]!;
  const labels: string[] = [];
  for (let i = 0; i < text.length; i += labelLength) labels.push(text.slice(i, i + labelLength));
  return labels;
}

/** Deterministic "random" bytes (a fixed LCG): the same payload on every run. */
export function payload(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    out[i] = s >>> 16;
  }
  return out;
}

/** Random bytes (95 by default) in a 10-letter non-hex alphabet, in labels of 24: the name v0.1 allowed. */
export function lowAlphabetName(suffix: string, seed = 7, bytes = 95): string {
  return `${encodeLabels(payload(bytes, seed), "ghijklmnop", 24).join(".")}.${suffix}`;
}
