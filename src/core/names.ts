import { domainToASCII } from "node:url";
import { NOT_PLAIN, normalisePlainHostName } from "./plain-host-name.js";

// The only ASCII a raw host name may hold is letters, digits, "-", "_" and ".". Anything
// else goes first: domainToASCII parses like a URL host, so it would cut at "/", "?", "#"
// or a backslash, drop tabs and newlines, and decode "%2e" (so "a.com#.evil.com" became "a.com").
const FORBIDDEN_ASCII = /[^a-zA-Z0-9._\-\u0080-\uffff]/;
// A last label that is a number makes resolvers (inet_aton, WHATWG URL) read the whole
// name as IPv4: "2130706433", "0x7f.1", "127.1" and "0177.0.0.1" all mean 127.0.0.1.
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/;

/**
 * Host-name normalisation shared by the policy compiler and every observation point
 * (DNS question, SNI, Host header, CONNECT authority), so both sides compare the same form.
 * Returns undefined for anything that is not a valid DNS host name.
 */
export function normaliseHostName(raw: string): string | undefined {
  const plain = normalisePlainHostName(raw);
  return plain === NOT_PLAIN ? normaliseHostNameByUrl(raw) : plain;
}

/** The full normalisation, through the URL parser; normaliseHostName skips it for plain names. */
export function normaliseHostNameByUrl(raw: string): string | undefined {
  let name = raw.trim();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length === 0 || name.length > 253 || FORBIDDEN_ASCII.test(name)) return undefined;
  const ascii = domainToASCII(name.toLowerCase());
  if (ascii === "" || ascii.length > 253) return undefined;
  const labels = ascii.split(".");
  for (const label of labels) {
    if (!/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) return undefined;
  }
  // IP literals land here too: IPv6 holds ":" and dotted IPv4 ends in a number.
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) return undefined;
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
