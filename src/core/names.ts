import { domainToASCII } from "node:url";
import { isIP } from "node:net";

/**
 * Host-name normalisation shared by the policy compiler and every observation point
 * (DNS question, SNI, Host header, CONNECT authority), so both sides compare the same form.
 * Returns undefined for anything that is not a valid DNS host name.
 */
export function normaliseHostName(raw: string): string | undefined {
  let name = raw.trim();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length === 0 || name.length > 253) return undefined;
  if (isIP(name) !== 0) return undefined;
  const ascii = domainToASCII(name.toLowerCase());
  if (ascii === "" || ascii.length > 253) return undefined;
  const labels = ascii.split(".");
  for (const label of labels) {
    if (!/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) return undefined;
  }
  return ascii;
}

/** A host pattern as written in a policy: an exact name or `*.` + name (subdomains only, never the apex). */
export type HostPattern = { kind: "exact"; name: string } | { kind: "wildcard"; suffix: string };

export function parseHostPattern(raw: string): HostPattern | undefined {
  const trimmed = raw.trim();
  if (trimmed.startsWith("*.")) {
    const suffix = normaliseHostName(trimmed.slice(2));
    if (suffix === undefined || suffix.includes("*")) return undefined;
    return { kind: "wildcard", suffix };
  }
  if (trimmed.includes("*")) return undefined;
  const name = normaliseHostName(trimmed);
  return name === undefined ? undefined : { kind: "exact", name };
}

export function hostPatternMatches(pattern: HostPattern, normalisedName: string): boolean {
  if (pattern.kind === "exact") return pattern.name === normalisedName;
  return normalisedName.endsWith("." + pattern.suffix);
}

export function formatHostPattern(pattern: HostPattern): string {
  return pattern.kind === "exact" ? pattern.name : `*.${pattern.suffix}`;
}

/** The labels a name has beneath a wildcard suffix (the part an exfiltrator controls). */
export function labelsUnder(pattern: HostPattern, normalisedName: string): string[] {
  if (pattern.kind === "exact") return [];
  const head = normalisedName.slice(0, normalisedName.length - pattern.suffix.length - 1);
  return head.split(".");
}
