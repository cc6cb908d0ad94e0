/**
 * The fast path of normaliseHostName (names.ts), without the URL parser, for a name that is
 * plain: lowercase letters, digits, "-", "_" and dots. For such a name domainToASCII changes
 * nothing unless a label is punycode ("xn--") or the name ends in a dot, and a name ending in
 * a number is refused either way. Every DNS question, SNI, Host and CONNECT authority is
 * normalised, most of them plain, so a stream of never-repeated names (a tunnel, a scan)
 * costs one pass over the text. Returns NOT_PLAIN for anything else, which the URL-parser
 * path decides. Same answer, name for name: test/core/plain-host-name.test.ts.
 */
export const NOT_PLAIN = Symbol("not plain");

export function normalisePlainHostName(raw: string): string | undefined | typeof NOT_PLAIN {
  const length = raw.length;
  // Punycode needs domainToASCII's validation, a trailing dot its trimming: neither is common.
  if (length === 0 || raw.charCodeAt(length - 1) === DOT || raw.startsWith("xn--") || raw.includes(".xn--")) return NOT_PLAIN;
  let start = 0;
  for (let i = 0; i <= length; i++) {
    const c = i === length ? DOT : raw.charCodeAt(i);
    if (c !== DOT) {
      if (!isLabelChar(c)) return NOT_PLAIN;
      continue;
    }
    // A label: 1 to 63 characters, neither starting nor ending with "-".
    const size = i - start;
    if (size === 0 || size > 63 || raw.charCodeAt(start) === HYPHEN || raw.charCodeAt(i - 1) === HYPHEN) return undefined;
    if (i === length && NUMERIC_LABEL.test(raw.slice(start))) return undefined;
    start = i + 1;
  }
  return length > 253 ? undefined : raw;
}

const DOT = 0x2e;
const HYPHEN = 0x2d;
// As in names.ts: a last label that is a number makes resolvers read the name as IPv4.
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/;

function isLabelChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === HYPHEN || c === 0x5f;
}
