import { createRequire } from "node:module";
import type * as Tldts from "tldts";

/**
 * The Public Suffix List, through the maintained `tldts` package. Loaded on first use with
 * require: it is CommonJS, and importing it as ESM costs most CLI verbs ~70 ms of export
 * scanning before any policy has a wildcard to check.
 */
export type PublicSuffixSection = "icann" | "private";

const requireCommonJs = createRequire(import.meta.url);
let tldts: typeof Tldts | undefined;

/**
 * The PSL section that lists `name` itself as a public suffix (`com`, `co.uk` are ICANN;
 * `github.io`, `s3.amazonaws.com` are private: anyone can get a name under them), or
 * undefined when `name` is not one. Names the list does not know (`test`, `internal`) are
 * not public suffixes here, although tldts's default rule would make every unknown TLD one.
 * `name` must already be normalised (lower case, punycode, no trailing dot).
 */
export function publicSuffixSection(name: string): PublicSuffixSection | undefined {
  tldts ??= requireCommonJs("tldts") as typeof Tldts;
  const parsed = tldts.parse(name, { allowPrivateDomains: true, extractHostname: false, detectIp: false, validateHostname: false, mixedInputs: false });
  if (parsed.publicSuffix !== name || parsed.domain !== null) return undefined;
  if (parsed.isIcann === true) return "icann";
  if (parsed.isPrivate === true) return "private";
  return undefined;
}
