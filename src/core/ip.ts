import { parseCidr } from "cidr-tools";

/**
 * IP literals and CIDR ranges, parsed strictly (cidr-tools alone accepts "/33" and
 * "300.1.1.1") and held as bigint intervals so a hot-path match is two comparisons.
 */
export interface IpRange {
  readonly cidr: string;
  readonly version: 4 | 6;
  readonly start: bigint;
  readonly end: bigint;
}

export interface ParsedIp {
  readonly text: string;
  readonly version: 4 | 6;
  readonly value: bigint;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const V4_MAPPED_START = 0xffff00000000n;
const V4_MAPPED_END = 0xffffffffffffn;

function ipVersion(text: string): 4 | 6 | undefined {
  if (IPV4.test(text)) return 4;
  if (!text.includes(":") || text.includes("%") || text.includes("[") || text.includes("]")) return undefined;
  try {
    // WHATWG URL parsing is pure and rejects every malformed IPv6 form.
    new URL(`http://[${text}]/`);
    return 6;
  } catch {
    return undefined;
  }
}

export function parseIp(raw: string): ParsedIp | undefined {
  const text = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  const version = ipVersion(text);
  if (version === undefined) return undefined;
  const value = parseOrUndefined(text)?.start;
  if (value === undefined) return undefined;
  // An IPv4-mapped IPv6 address reaches the IPv4 host: classify and match it as IPv4.
  if (version === 6 && value >= V4_MAPPED_START && value <= V4_MAPPED_END) {
    const v4 = value - V4_MAPPED_START;
    const dotted = [24n, 16n, 8n, 0n].map((s) => String((v4 >> s) & 0xffn)).join(".");
    return { text: dotted, version: 4, value: v4 };
  }
  return { text, version, value };
}

/**
 * The library's verdict on text that its own version sniffing let through: it throws on
 * input such as ":@a/" (taken for IPv6). Client-chosen names reach here; never let them throw.
 */
function parseOrUndefined(text: string): ReturnType<typeof parseCidr> | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function isIpLiteral(raw: string): boolean {
  return parseIp(raw) !== undefined;
}

export function parseIpRange(raw: string): IpRange | undefined {
  const slash = raw.indexOf("/");
  const addr = slash === -1 ? raw : raw.slice(0, slash);
  const version = ipVersion(addr);
  if (version === undefined) return undefined;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = raw.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  const parsed = parseOrUndefined(`${addr}/${prefix}`);
  if (parsed === undefined) return undefined;
  return { cidr: `${addr}/${prefix}`, version, start: parsed.start, end: parsed.end };
}

export function rangeContains(range: IpRange, ip: ParsedIp): boolean {
  return range.version === ip.version && ip.value >= range.start && ip.value <= range.end;
}

export type IpClass =
  | "public"
  | "metadata"
  | "loopback"
  | "private"
  | "link-local"
  | "unspecified"
  | "shared"
  | "multicast"
  | "reserved"
  | "unique-local";

// Order matters: the first match wins, so metadata addresses precede their enclosing ranges.
const SPECIAL: ReadonlyArray<readonly [IpClass, IpRange]> = (
  [
    ["metadata", "169.254.169.254/32"],
    ["metadata", "169.254.170.2/32"],
    ["metadata", "100.100.100.200/32"],
    ["metadata", "192.0.0.192/32"],
    ["metadata", "fd00:ec2::254/128"],
    ["unspecified", "0.0.0.0/8"],
    ["private", "10.0.0.0/8"],
    ["shared", "100.64.0.0/10"],
    ["loopback", "127.0.0.0/8"],
    ["link-local", "169.254.0.0/16"],
    ["private", "172.16.0.0/12"],
    ["reserved", "192.0.0.0/24"],
    ["reserved", "192.0.2.0/24"],
    ["private", "192.168.0.0/16"],
    ["reserved", "198.18.0.0/15"],
    ["reserved", "198.51.100.0/24"],
    ["reserved", "203.0.113.0/24"],
    ["multicast", "224.0.0.0/4"],
    ["reserved", "240.0.0.0/4"],
    ["unspecified", "::/128"],
    ["loopback", "::1/128"],
    // IETF-reserved; holds IPv4-compatible ::a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d.
    ["reserved", "::/8"],
    ["reserved", "64:ff9b::/96"],
    ["reserved", "100::/64"],
    ["reserved", "2001:db8::/32"],
    ["unique-local", "fc00::/7"],
    ["link-local", "fe80::/10"],
    ["multicast", "ff00::/8"],
  ] as const
).map(([cls, cidr]) => [cls, parseIpRange(cidr) as IpRange] as const);

export function classifyIp(ip: ParsedIp): IpClass {
  for (const [cls, range] of SPECIAL) if (rangeContains(range, ip)) return cls;
  return "public";
}
