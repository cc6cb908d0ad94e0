import { parseIpRange, type IpClass, type IpRange } from "../core/ip.js";
import { parseHostPattern } from "../core/names.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { IssuePath } from "./policy-issue.js";
import { publicSuffixSection, type PublicSuffixSection } from "./public-suffix.js";

/**
 * Lint warnings on egress rules that are valid but give away more than they seem to:
 *  - a wildcard directly over a public suffix (`*.com`, `*.co.uk`, `*.github.io`) lets the
 *    server reach any domain anyone can register or claim there;
 *  - a CIDR rule over loopback, link-local, metadata or unspecified addresses lets the server
 *    reach them, and lifts the rebinding check for names that resolve there.
 */
export type EgressWarningCode = "wildcard_over_public_suffix" | "cidr_covers_local_addresses";

export interface EgressWarning {
  readonly path: IssuePath;
  readonly message: string;
  readonly code: EgressWarningCode;
}

type LocalClass = Extract<IpClass, "loopback" | "link-local" | "metadata" | "unspecified">;

/** Each range keeps the class core/ip.ts gives it (a test holds them together). */
export const LOCAL_RANGES: ReadonlyArray<{ readonly cls: LocalClass; readonly range: IpRange }> = (
  [
    ["loopback", "127.0.0.0/8"],
    ["loopback", "::1/128"],
    ["link-local", "169.254.0.0/16"],
    ["link-local", "fe80::/10"],
    ["metadata", "169.254.169.254/32"],
    ["metadata", "169.254.170.2/32"],
    ["metadata", "100.100.100.200/32"],
    ["metadata", "192.0.0.192/32"],
    ["metadata", "fd00:ec2::254/128"],
    // A connection to 0.0.0.0 reaches the local host on Linux.
    ["unspecified", "0.0.0.0/8"],
    ["unspecified", "::/128"],
  ] as const
).map(([cls, cidr]) => ({ cls, range: parseIpRange(cidr) as IpRange }));

const CLASS_WORDS: Readonly<Record<LocalClass, string>> = {
  loopback: "loopback",
  "link-local": "link-local",
  metadata: "cloud metadata",
  unspecified: "unspecified",
};

export function egressWarnings(policy: Policy): EgressWarning[] {
  const warnings: EgressWarning[] = [];
  policy.egress.allow.forEach((entry, index) => {
    if (entry.host !== undefined) {
      const pattern = parseHostPattern(entry.host);
      const section = pattern?.kind === "wildcard" ? publicSuffixSection(pattern.suffix) : undefined;
      if (pattern?.kind === "wildcard" && section !== undefined) {
        warnings.push({ path: ["egress", "allow", index, "host"], code: "wildcard_over_public_suffix", message: publicSuffixMessage(pattern.suffix, section) });
      }
    }
    const range = entry.cidr !== undefined ? parseIpRange(entry.cidr) : undefined;
    if (range !== undefined) {
      const covered = LOCAL_RANGES.filter((local) => overlaps(range, local.range));
      if (covered.length > 0) warnings.push({ path: ["egress", "allow", index, "cidr"], code: "cidr_covers_local_addresses", message: localRangesMessage(range, covered) });
    }
  });
  return warnings;
}

function publicSuffixMessage(suffix: string, section: PublicSuffixSection): string {
  const list = section === "icann" ? "Public Suffix List" : "Public Suffix List, private section: a shared hosting or cloud suffix";
  const who = section === "icann" ? "any domain anyone can register there" : "any name anyone can claim there";
  return `*.${suffix} is a wildcard directly over "${suffix}", a public suffix (${list}): it matches ${who}, so the server can reach hosts an attacker controls; name the domain you mean, e.g. *.example.${suffix}`;
}

function localRangesMessage(range: IpRange, covered: readonly { cls: LocalClass; range: IpRange }[]): string {
  const byClass = new Map<LocalClass, string[]>();
  for (const { cls, range: local } of covered) byClass.set(cls, [...(byClass.get(cls) ?? []), describeRange(local)]);
  const parts = [...byClass].map(([cls, ranges]) => `${CLASS_WORDS[cls]} (${ranges.join(", ")})`);
  const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
  return `${range.cidr} includes ${list} addresses: the server may connect to them, and a declared name that resolves into them is no longer refused (the rebinding check); narrow the range unless you mean exactly this`;
}

function overlaps(a: IpRange, b: IpRange): boolean {
  return a.version === b.version && a.start <= b.end && b.start <= a.end;
}

/** A single address without its /32 or /128. */
function describeRange(range: IpRange): string {
  return range.start === range.end ? range.cidr.slice(0, range.cidr.indexOf("/")) : range.cidr;
}
