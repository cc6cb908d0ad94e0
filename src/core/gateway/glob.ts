/**
 * Globs over exposed names (`everything__*`, `*__read_?`): `*` is any run of characters,
 * `?` exactly one, everything else is literal. Matching is whole-string and case-sensitive,
 * as the names themselves are.
 */
export type GlobMatcher = (text: string) => boolean;

const cache = new Map<string, RegExp>();
const MAX_CACHED = 4096;

export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re !== undefined) return re;
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  re = new RegExp(`^${body}$`, "s");
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(glob, re);
  return re;
}

export function globMatches(glob: string, text: string): boolean {
  return globToRegExp(glob).test(text);
}

/** The first glob of `globs` that matches `text`. */
export function firstMatch(globs: readonly string[], text: string): string | undefined {
  return globs.find((g) => globMatches(g, text));
}
