import { describe, expect, it } from "vitest";
import { decide, permits, type Attempt, type BaselineView, type DecisionContext, type Verdict } from "../../src/core/decision.js";
import { parseIpRange, type IpRange } from "../../src/core/ip.js";
import type { Mode, PolicyInput } from "../../src/core/policy/policy-schema.js";
import { DEFAULT_TUNNELLING_LIMITS } from "../../src/core/tunnelling.js";
import { testPolicy } from "../support/sidecar-context.js";

type Egress = NonNullable<PolicyInput["egress"]>;

// Addresses here are only data for a pure function; nothing is dialled.
const EGRESS: Egress = {
  allow: [
    { host: "api.example.com", ports: [443] },
    { host: "*.cdn.example.com", ports: [443, 8443] },
    { host: "db.internal.example", ports: [5432] },
    { host: "bücher.example", ports: [443] },
    { cidr: "10.20.0.0/16", ports: [5432] },
    { cidr: "1.2.3.0/24", ports: [443] },
    { cidr: "2001:db8::/32", ports: [443] },
  ],
  dns: { recordTypes: ["A", "TXT"] },
};

function context(mode: Mode, egress: Egress = EGRESS, extra: Partial<DecisionContext> = {}): DecisionContext {
  return { policy: testPolicy({ name: "fixture", egress }), mode, ...extra };
}

const ranges = (...cidrs: string[]): IpRange[] => cidrs.map((c) => parseIpRange(c)!);

const connect = (name: string, port = 443, more: Partial<Attempt> = {}): Attempt => ({ stage: "connect", protocol: "tls", name, port, ...more });
const query = (name: string, recordType = "A", more: Partial<Attempt> = {}): Attempt => ({ stage: "dns", protocol: "dns", name, recordType, ...more });
const toIp = (ip: string, port = 443, more: Partial<Attempt> = {}): Attempt => ({ stage: "connect", protocol: "connect", ip, port, ...more });

const allow = (reason: string, rule: string): Verdict => ({ verdict: "allow", reasons: [reason] as Verdict["reasons"], rule }) as Verdict;

describe.each([
  ["enforcing", "block"],
  ["observing", "would-block"],
] as const)("decide in %s mode", (mode, violation) => {
  const ctx = context(mode);
  const check = (attempt: Attempt, c: DecisionContext = ctx) => decide(c, attempt);

  describe("declared hosts", () => {
    it("allows a declared exact host on a declared port", () => {
      expect(check(connect("api.example.com"))).toEqual(allow("declared-host", "api.example.com"));
    });

    it.each([["API.Example.COM"], ["api.example.com."], ["API.EXAMPLE.COM."], ["ａｐｉ.example.com"], ["api\u3002example.com"]])(
      "matches the normalised form of %j",
      (name) => {
        expect(check(connect(name))).toEqual(allow("declared-host", "api.example.com"));
      },
    );

    it("matches an IDN host in Unicode or punycode", () => {
      expect(check(connect("bücher.example"))).toEqual(allow("declared-host", "xn--bcher-kva.example"));
      expect(check(connect("BÜCHER.EXAMPLE."))).toEqual(allow("declared-host", "xn--bcher-kva.example"));
      expect(check(connect("xn--bcher-kva.example"))).toEqual(allow("declared-host", "xn--bcher-kva.example"));
    });

    it("allows a wildcard's subdomains at any depth", () => {
      expect(check(connect("img.cdn.example.com"))).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
      expect(check(connect("a.b.c.cdn.example.com", 8443))).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
    });

    it("does not allow a wildcard's apex", () => {
      expect(check(connect("cdn.example.com"))).toEqual({ verdict: violation, reasons: ["undeclared-host"] });
    });

    it.each([
      ["evil.com"],
      ["example.com"],
      ["x.api.example.com"],
      ["api.example.com.evil.com"],
      ["apiexample.com"],
      ["evilcdn.example.com"],
      ["\u0430pi.example.com"], // Cyrillic "а": a homograph, not the declared name
      ["bucher.example"],
    ])("blocks the undeclared host %j", (name) => {
      expect(check(connect(name))).toEqual({ verdict: violation, reasons: ["undeclared-host"] });
    });

    it("blocks an undeclared port at the connect stage and reports the rule", () => {
      expect(check(connect("api.example.com", 8443))).toEqual({ verdict: violation, reasons: ["undeclared-port"], rule: "api.example.com" });
      expect(check(connect("img.cdn.example.com", 80))).toEqual({ verdict: violation, reasons: ["undeclared-port"], rule: "*.cdn.example.com" });
    });

    it("ignores the port at the DNS stage", () => {
      expect(check(query("api.example.com", "A", { port: 53 }))).toEqual(allow("declared-host", "api.example.com"));
      expect(check(query("db.internal.example", "A", { port: 443 }))).toEqual(allow("declared-host", "db.internal.example"));
    });

    it("allows a connect attempt for a declared name", () => {
      expect(check({ stage: "connect", protocol: "tcp", name: "db.internal.example", port: 5432 })).toEqual(allow("declared-host", "db.internal.example"));
    });
  });

  describe("DNS record types", () => {
    it("answers A, and a query without a type, for a declared name", () => {
      expect(check(query("api.example.com", "A"))).toEqual(allow("declared-host", "api.example.com"));
      expect(check({ stage: "dns", protocol: "dns", name: "api.example.com" })).toEqual(allow("declared-host", "api.example.com"));
    });

    it("answers TXT only when the policy declares it", () => {
      expect(check(query("api.example.com", "TXT"))).toEqual(allow("declared-host", "api.example.com"));
      const noTxt = context(mode, { ...EGRESS, dns: { recordTypes: ["A"] } });
      expect(check(query("api.example.com", "TXT"), noTxt)).toEqual({ verdict: violation, reasons: ["undeclared-record-type"], rule: "api.example.com" });
    });

    it.each([["HTTPS"], ["SVCB"]])("answers %s only when declared", (type) => {
      expect(check(query("api.example.com", type))).toEqual({ verdict: violation, reasons: ["undeclared-record-type"], rule: "api.example.com" });
      const declared = context(mode, { ...EGRESS, dns: { recordTypes: ["A", type as "HTTPS"] } });
      expect(check(query("api.example.com", type), declared)).toEqual(allow("declared-host", "api.example.com"));
    });

    it.each([["MX"], ["CNAME"], ["ANY"], ["NS"], ["PTR"], ["NULL"], ["UNKNOWN_65"]])("never answers %s", (type) => {
      const all = context(mode, { ...EGRESS, dns: { recordTypes: ["A", "TXT", "HTTPS", "SVCB"] } });
      expect(check(query("api.example.com", type), all)).toEqual({ verdict: violation, reasons: ["undeclared-record-type"], rule: "api.example.com" });
    });

    it("hard-blocks AAAA whatever the name, even in observing mode", () => {
      expect(check(query("api.example.com", "AAAA"))).toEqual({ verdict: "block", reasons: ["ipv6-disabled"], rule: "api.example.com" });
      expect(check(query("evil.com", "AAAA"))).toEqual({ verdict: "block", reasons: ["ipv6-disabled", "undeclared-host"] });
    });

    // dns-packet spells types in capitals, but the core must not depend on an adapter's spelling.
    it("reads record types case-insensitively", () => {
      expect(check(query("api.example.com", "aaaa"))).toEqual({ verdict: "block", reasons: ["ipv6-disabled"], rule: "api.example.com" });
      expect(check(query("api.example.com", "txt"))).toEqual(allow("declared-host", "api.example.com"));
      expect(check(query("api.example.com", "https"))).toEqual({ verdict: violation, reasons: ["undeclared-record-type"], rule: "api.example.com" });
    });

    it("does not judge record types at the connect stage", () => {
      expect(check(connect("api.example.com", 443, { recordType: "MX" }))).toEqual(allow("declared-host", "api.example.com"));
    });

    it("reports an undeclared name, not its record type", () => {
      expect(check(query("evil.com", "TXT"))).toEqual({ verdict: violation, reasons: ["undeclared-host"] });
    });
  });

  describe("IP literal destinations", () => {
    it("allows an address inside a declared CIDR on a declared port", () => {
      expect(check(toIp("1.2.3.4", 443))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
      expect(check(toIp("1.2.3.0", 443))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
      expect(check(toIp("1.2.3.255", 443))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
    });

    it("allows a private address that a CIDR rule declares", () => {
      expect(check(toIp("10.20.5.6", 5432))).toEqual(allow("declared-cidr", "10.20.0.0/16"));
    });

    it("blocks an address outside every CIDR", () => {
      expect(check(toIp("1.2.4.1"))).toEqual({ verdict: violation, reasons: ["undeclared-ip"] });
      expect(check(toIp("1.2.2.255"))).toEqual({ verdict: violation, reasons: ["undeclared-ip"] });
    });

    it("blocks a declared CIDR on an undeclared port", () => {
      expect(check(toIp("1.2.3.4", 80))).toEqual({ verdict: violation, reasons: ["undeclared-ip"] });
    });

    it("hard-blocks a private CIDR address on an undeclared port", () => {
      expect(check(toIp("10.20.5.6", 443))).toEqual({ verdict: "block", reasons: ["destination-private", "undeclared-ip"] });
    });

    it("judges a DNS question for an IP literal as that literal", () => {
      expect(check(query("127.0.0.1"))).toEqual({ verdict: "block", reasons: ["destination-loopback", "undeclared-ip"] });
      expect(check(query("1.2.3.4"))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
    });

    it("reads an IP given as the name (Host or SNI) as a literal", () => {
      expect(check(connect("1.2.3.4"))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
      expect(check(connect("1.2.4.1"))).toEqual({ verdict: violation, reasons: ["undeclared-ip"] });
    });

    it("matches an IPv4-mapped IPv6 literal against IPv4 CIDRs", () => {
      expect(check(toIp("::ffff:1.2.3.4"))).toEqual(allow("declared-cidr", "1.2.3.0/24"));
      expect(check(toIp("[::ffff:10.20.0.1]", 5432))).toEqual(allow("declared-cidr", "10.20.0.0/16"));
    });

    it.each([
      ["127.0.0.1", ["destination-loopback", "undeclared-ip"]],
      ["127.8.8.8", ["destination-loopback", "undeclared-ip"]],
      ["0.0.0.0", ["destination-unspecified", "undeclared-ip"]],
      ["10.0.0.1", ["destination-private", "undeclared-ip"]],
      ["192.168.1.1", ["destination-private", "undeclared-ip"]],
      ["169.254.169.254", ["destination-metadata", "undeclared-ip"]],
      ["169.254.1.1", ["destination-link-local", "undeclared-ip"]],
      ["100.64.0.1", ["destination-shared", "undeclared-ip"]],
      ["::ffff:127.0.0.1", ["destination-loopback", "undeclared-ip"]],
      ["::ffff:169.254.169.254", ["destination-metadata", "undeclared-ip"]],
      ["::1", ["ipv6-disabled", "destination-loopback", "undeclared-ip"]],
      ["[::1]", ["ipv6-disabled", "destination-loopback", "undeclared-ip"]],
      ["fd00:ec2::254", ["ipv6-disabled", "destination-metadata", "undeclared-ip"]],
      ["fe80::1", ["ipv6-disabled", "destination-link-local", "undeclared-ip"]],
      ["::7f00:1", ["ipv6-disabled", "destination-reserved", "undeclared-ip"]],
      ["2606:4700::1111", ["ipv6-disabled", "undeclared-ip"]],
    ])("hard-blocks the literal %s in every mode", (addr, reasons) => {
      expect(check(toIp(addr))).toEqual({ verdict: "block", reasons });
      expect(check(connect(addr))).toEqual({ verdict: "block", reasons });
    });

    it("blocks an IPv6 literal even inside a declared IPv6 CIDR", () => {
      expect(check(toIp("2001:db8::1", 443))).toEqual({ verdict: "block", reasons: ["ipv6-disabled"], rule: "2001:db8::/32" });
      expect(check(toIp("2001:db8::1", 80))).toEqual({ verdict: "block", reasons: ["ipv6-disabled", "destination-reserved", "undeclared-ip"] });
    });

    it("judges the IP, not the name, when both are given", () => {
      expect(check(toIp("1.2.4.1", 443, { name: "api.example.com" }))).toEqual({ verdict: violation, reasons: ["undeclared-ip"] });
      expect(check(toIp("127.0.0.1", 443, { name: "api.example.com" }))).toEqual({ verdict: "block", reasons: ["destination-loopback", "undeclared-ip"] });
    });

    // An adapter that could not parse the destination must not fall back to the name.
    it.each([["300.1.1.1"], ["2130706433"], ["fe80::1%eth0"], ["not-an-ip"], [""]])("hard-blocks the unparseable IP %j, whatever the name", (ip) => {
      const v = check(toIp(ip, 443, { name: "api.example.com" }));
      expect(v.verdict).toBe("block");
      expect(v.reasons).toContain("invalid-name");
    });
  });

  describe("rebinding: private answers for declared names", () => {
    it("allows a declared name that resolves to public addresses", () => {
      expect(check(connect("api.example.com", 443, { resolvedIps: ["1.1.1.1", "8.8.8.8"] }))).toEqual(allow("declared-host", "api.example.com"));
    });

    it.each([
      ["10.0.0.5", "resolution-private"],
      ["172.16.0.1", "resolution-private"],
      ["192.168.0.10", "resolution-private"],
      ["127.0.0.1", "resolution-loopback"],
      ["::ffff:127.0.0.1", "resolution-loopback"],
      ["::1", "resolution-loopback"],
      ["169.254.169.254", "resolution-metadata"],
      ["fd00:ec2::254", "resolution-metadata"],
      ["100.100.100.200", "resolution-metadata"],
      ["169.254.10.10", "resolution-link-local"],
      ["fe80::1", "resolution-link-local"],
      ["100.64.1.1", "resolution-shared"],
      ["0.0.0.0", "resolution-unspecified"],
      ["224.0.0.1", "resolution-multicast"],
      ["fc00::1", "resolution-unique-local"],
      ["::7f00:1", "resolution-reserved"],
    ])("hard-blocks a declared name resolving to %s in every mode", (addr, reason) => {
      expect(check(connect("api.example.com", 443, { resolvedIps: [addr] }))).toEqual({ verdict: "block", reasons: [reason], rule: "api.example.com" });
      expect(check(query("api.example.com", "A", { resolvedIps: [addr] }))).toEqual({ verdict: "block", reasons: [reason], rule: "api.example.com" });
    });

    it("blocks when any one answer is private", () => {
      expect(check(connect("img.cdn.example.com", 443, { resolvedIps: ["1.1.1.1", "10.0.0.1"] }))).toEqual({
        verdict: "block",
        reasons: ["resolution-private"],
        rule: "*.cdn.example.com",
      });
    });

    it("hard-blocks an undeclared name resolving privately, even in observing mode", () => {
      expect(check(connect("evil.com", 443, { resolvedIps: ["169.254.169.254"] }))).toEqual({ verdict: "block", reasons: ["resolution-metadata", "undeclared-host"] });
    });

    // Wildcard DNS services (nip.io, sslip.io) answer with the address written in the name.
    it("catches a name that embeds a private address by its answer", () => {
      const nip = context(mode, { allow: [{ host: "*.nip.io" }] });
      expect(check(connect("127.0.0.1.nip.io", 443, { resolvedIps: ["127.0.0.1"] }), nip)).toEqual({ verdict: "block", reasons: ["resolution-loopback"], rule: "*.nip.io" });
      expect(check(connect("169-254-169-254.nip.io", 443, { resolvedIps: ["169.254.169.254"] }), nip)).toEqual({ verdict: "block", reasons: ["resolution-metadata"], rule: "*.nip.io" });
    });

    it("hard-blocks an answer that is not an address", () => {
      expect(check(connect("api.example.com", 443, { resolvedIps: ["garbage"] }))).toEqual({ verdict: "block", reasons: ["upstream-unresolvable"], rule: "api.example.com" });
    });

    it("allows a private answer a CIDR rule declares for that port", () => {
      expect(check(connect("db.internal.example", 5432, { resolvedIps: ["10.20.1.1"] }))).toEqual(allow("declared-host", "db.internal.example"));
      expect(check(query("db.internal.example", "A", { resolvedIps: ["10.20.1.1"] }))).toEqual(allow("declared-host", "db.internal.example"));
    });

    it("still blocks a private answer when the CIDR rule declares another port", () => {
      expect(check(connect("api.example.com", 443, { resolvedIps: ["10.20.1.1"] }))).toEqual({ verdict: "block", reasons: ["resolution-private"], rule: "api.example.com" });
    });

    it("allows a private answer inside trustedRanges, and nothing beyond them", () => {
      const trusted = context(mode, EGRESS, { trustedRanges: ranges("10.0.0.0/8") });
      expect(check(connect("api.example.com", 443, { resolvedIps: ["10.9.9.9"] }), trusted)).toEqual(allow("declared-host", "api.example.com"));
      expect(check(connect("api.example.com", 443, { resolvedIps: ["::ffff:10.9.9.9"] }), trusted)).toEqual(allow("declared-host", "api.example.com"));
      expect(check(connect("api.example.com", 443, { resolvedIps: ["169.254.169.254"] }), trusted)).toEqual({
        verdict: "block",
        reasons: ["resolution-metadata"],
        rule: "api.example.com",
      });
      expect(check(connect("api.example.com", 443, { resolvedIps: ["192.168.1.1"] }), trusted)).toEqual({
        verdict: "block",
        reasons: ["resolution-private"],
        rule: "api.example.com",
      });
    });

    it("trusts no range by default", () => {
      expect(check(connect("api.example.com", 443, { resolvedIps: ["10.9.9.9"] }), context(mode, EGRESS, { trustedRanges: [] }))).toEqual({
        verdict: "block",
        reasons: ["resolution-private"],
        rule: "api.example.com",
      });
    });
  });

  describe("SNI mismatch", () => {
    it("hard-blocks in every mode, reporting the rule", () => {
      expect(check(connect("api.example.com", 443, { protocol: "connect", sniMismatch: true }))).toEqual({ verdict: "block", reasons: ["sni-mismatch"], rule: "api.example.com" });
      expect(check(connect("evil.com", 443, { protocol: "connect", sniMismatch: true }))).toEqual({ verdict: "block", reasons: ["sni-mismatch", "undeclared-host"] });
    });

    it("is no reason when false", () => {
      expect(check(connect("api.example.com", 443, { sniMismatch: false }))).toEqual(allow("declared-host", "api.example.com"));
    });
  });

  describe("capture", () => {
    const capturing = context(mode, { ...EGRESS, capture: true });

    it("blocks even a declared destination, with capture first", () => {
      expect(check(connect("api.example.com"), capturing)).toEqual({ verdict: "block", reasons: ["capture"], rule: "api.example.com" });
      expect(check(query("api.example.com"), capturing)).toEqual({ verdict: "block", reasons: ["capture"], rule: "api.example.com" });
      expect(check(toIp("1.2.3.4"), capturing)).toEqual({ verdict: "block", reasons: ["capture"], rule: "1.2.3.0/24" });
    });

    it("keeps every other reason after capture", () => {
      expect(check(connect("evil.com"), capturing)).toEqual({ verdict: "block", reasons: ["capture", "undeclared-host"] });
      expect(check(query("evil.com", "AAAA"), capturing)).toEqual({ verdict: "block", reasons: ["capture", "ipv6-disabled", "undeclared-host"] });
      expect(check(connect("x".repeat(25) + ".cdn.example.com"), capturing)).toEqual({
        verdict: "block",
        reasons: ["capture", "tunnel-long-label"],
        rule: "*.cdn.example.com",
      });
    });

    it("lists each reason once", () => {
      expect(check(query("::1", "AAAA"), capturing)).toEqual({ verdict: "block", reasons: ["capture", "ipv6-disabled", "destination-loopback", "undeclared-ip"] });
    });

    it("blocks with a capture-only policy", () => {
      const only = context(mode, { capture: { ports: [80] } });
      expect(check(connect("anything.example", 80), only)).toEqual({ verdict: "block", reasons: ["capture", "undeclared-host"] });
    });
  });

  describe("tunnelling under a wildcard", () => {
    it("blocks a long label (strong signal)", () => {
      expect(check(query("a".repeat(41) + ".cdn.example.com"))).toEqual({ verdict: violation, reasons: ["tunnel-long-label"], rule: "*.cdn.example.com" });
    });

    it("blocks a high-entropy blob (strong signal)", () => {
      // 32 characters: past softLabelLength too, so the weak length signal rides along
      const tunnel = { verdict: violation, reasons: ["tunnel-entropy", "tunnel-long-label"], rule: "*.cdn.example.com" };
      expect(check(query("iflvgx2tivbverkul5augq2fknjv6s2f.cdn.example.com"))).toEqual(tunnel);
      expect(check(query("2d711642b726b04401627ca9fbac32f5.cdn.example.com"))).toEqual(tunnel);
      expect(check(query("iflvgx2tivbverku.l5augq2fknjv6s2f.cdn.example.com"))).toEqual({ ...tunnel, reasons: ["tunnel-entropy"] });
      expect(check(query("2d711642b726b044.01627ca9fbac32f5.cdn.example.com"))).toEqual({ ...tunnel, reasons: ["tunnel-entropy"] });
    });

    it("blocks a high rate of unique subdomains (strong signal)", () => {
      expect(check(query("img.cdn.example.com", "A", { uniqueSubdomainsPerMinute: 61 }))).toEqual({ verdict: violation, reasons: ["tunnel-unique-rate"], rule: "*.cdn.example.com" });
      expect(check(query("img.cdn.example.com", "A", { uniqueSubdomainsPerMinute: 60 }))).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
    });

    it("flags a weak signal and lets it through", () => {
      expect(check(query("a".repeat(25) + ".cdn.example.com"))).toEqual({ verdict: "flag", reasons: ["tunnel-long-label", "declared-wildcard"], rule: "*.cdn.example.com" });
      expect(check(connect("a".repeat(40) + ".cdn.example.com"))).toEqual({ verdict: "flag", reasons: ["tunnel-long-label", "declared-wildcard"], rule: "*.cdn.example.com" });
    });

    it("keeps weak reasons beside strong ones", () => {
      const v = check(query("a".repeat(30) + ".cdn.example.com", "A", { uniqueSubdomainsPerMinute: 1000 }));
      expect(v).toEqual({ verdict: violation, reasons: ["tunnel-unique-rate", "tunnel-long-label"], rule: "*.cdn.example.com" });
    });

    it("never applies to an exact host, whose labels the server cannot vary", () => {
      const exact = context(mode, { allow: [{ host: "a".repeat(50) + ".example.com" }] });
      expect(check(query("a".repeat(50) + ".example.com", "A", { uniqueSubdomainsPerMinute: 10_000 }), exact)).toEqual(
        allow("declared-host", "a".repeat(50) + ".example.com"),
      );
    });

    it("lets benign names through, at most flagged", () => {
      const aws = context(mode, { allow: [{ host: "*.amazonaws.com" }] });
      expect(check(connect("s3.eu-west-1.amazonaws.com"), aws)).toEqual(allow("declared-wildcard", "*.amazonaws.com"));
      expect(check(connect("my-bucket-prod.amazonaws.com"), aws)).toEqual(allow("declared-wildcard", "*.amazonaws.com"));
      // "my-bucket-prods3" is 16 characters at ~3.6 bits: weak, so flagged but allowed
      expect(check(connect("my-bucket-prod.s3.amazonaws.com"), aws)).toEqual({ verdict: "flag", reasons: ["tunnel-entropy", "declared-wildcard"], rule: "*.amazonaws.com" });
    });

    it("uses the context's limits", () => {
      const strict = context(mode, EGRESS, { tunnelling: { ...DEFAULT_TUNNELLING_LIMITS, maxLabelLength: 3, softLabelLength: 2 } });
      expect(check(query("img.cdn.example.com"), strict)).toEqual({ verdict: "flag", reasons: ["tunnel-long-label", "declared-wildcard"], rule: "*.cdn.example.com" });
      expect(check(query("imgs.cdn.example.com"), strict)).toEqual({ verdict: violation, reasons: ["tunnel-long-label"], rule: "*.cdn.example.com" });
    });
  });

  describe("baseline drift", () => {
    const baseline: BaselineView = {
      destinations: new Set(["api.example.com:443", "img.cdn.example.com:443"]),
      names: new Set(["api.example.com", "img.cdn.example.com"]),
      dnsNames: new Set(["api.example.com", "img.cdn.example.com"]),
      maxConnectionsPerMinute: new Map([["api.example.com:443", 10]]),
      rateTolerance: 3,
    };
    const frozen = context(mode, EGRESS, { baseline });

    it("allows what the baseline saw", () => {
      expect(check(connect("api.example.com"), frozen)).toEqual(allow("declared-host", "api.example.com"));
      expect(check(connect("IMG.cdn.example.com."), frozen)).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
      expect(check(query("api.example.com"), frozen)).toEqual(allow("declared-host", "api.example.com"));
    });

    it("blocks a new destination under a wildcard", () => {
      expect(check(connect("video.cdn.example.com"), frozen)).toEqual({ verdict: violation, reasons: ["drift-new-destination"], rule: "*.cdn.example.com" });
    });

    it("blocks a declared host the baseline never saw", () => {
      expect(check(connect("db.internal.example", 5432), frozen)).toEqual({ verdict: violation, reasons: ["drift-new-destination"], rule: "db.internal.example" });
    });

    it("blocks a new port for a known name", () => {
      expect(check(connect("img.cdn.example.com", 8443), frozen)).toEqual({ verdict: violation, reasons: ["drift-new-port"], rule: "*.cdn.example.com" });
    });

    it("blocks a new DNS name", () => {
      expect(check(query("video.cdn.example.com"), frozen)).toEqual({ verdict: violation, reasons: ["drift-new-dns-name"], rule: "*.cdn.example.com" });
    });

    it("blocks a rate above tolerance × the baseline maximum, and only above it", () => {
      expect(check(connect("api.example.com", 443, { connectionsPerMinute: 30 }), frozen)).toEqual(allow("declared-host", "api.example.com"));
      expect(check(connect("api.example.com", 443, { connectionsPerMinute: 31 }), frozen)).toEqual({ verdict: violation, reasons: ["drift-rate"], rule: "api.example.com" });
      expect(check(connect("img.cdn.example.com", 443, { connectionsPerMinute: 10_000 }), frozen)).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
    });

    it("reports a policy violation instead of drift", () => {
      expect(check(connect("api.example.com", 8443), frozen)).toEqual({ verdict: violation, reasons: ["undeclared-port"], rule: "api.example.com" });
      expect(check(connect("evil.com"), frozen)).toEqual({ verdict: violation, reasons: ["undeclared-host"] });
    });

    it("reports drift beside a weak tunnelling signal", () => {
      expect(check(connect("a".repeat(25) + ".cdn.example.com"), frozen)).toEqual({
        verdict: violation,
        reasons: ["drift-new-destination", "tunnel-long-label"],
        rule: "*.cdn.example.com",
      });
    });

    it("finds no drift without a baseline", () => {
      expect(check(connect("video.cdn.example.com", 8443, { connectionsPerMinute: 10_000 }))).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
      expect(check(query("video.cdn.example.com"))).toEqual(allow("declared-wildcard", "*.cdn.example.com"));
    });
  });

  describe("missing and invalid names", () => {
    it("blocks a connect attempt that carries no name", () => {
      expect(check({ stage: "connect", protocol: "tcp", port: 5432 })).toEqual({ verdict: violation, reasons: ["no-name"] });
    });

    // It used to be allowed with no reasons at all.
    it("blocks a DNS attempt that carries no name", () => {
      expect(check({ stage: "dns", protocol: "dns", recordType: "A" })).toEqual({ verdict: violation, reasons: ["no-name"] });
    });

    it.each([
      ["a..com"],
      [".api.example.com"],
      ["api.example.com.."],
      ["-api.example.com"],
      ["api.example.com:443"],
      ["api example.com"],
      ["api.example.com#.evil.com"],
      ["api.example.com/.evil.com"],
      ["api.example.com?x"],
      ["api.example.com\\x"],
      ["api\texample.com"],
      ["api%2eexample.com"],
      ["*.cdn.example.com"],
      ["a".repeat(64) + ".cdn.example.com"],
      [`${"a".repeat(60)}.`.repeat(5) + "cdn.example.com"],
      [""],
    ])("hard-blocks the invalid name %j in every mode", (name) => {
      expect(check(connect(name))).toEqual({ verdict: "block", reasons: ["invalid-name", "no-name"] });
      expect(check(query(name))).toEqual({ verdict: "block", reasons: ["invalid-name", "no-name"] });
    });

    // inet_aton (and so getaddrinfo) reads these as 127.0.0.1; WHATWG URL does too.
    // normaliseHostName turned them into the name "127.0.0.1", which then skipped the
    // IP-literal checks: only "undeclared-host", so OBSERVING let them through.
    it.each([["2130706433"], ["0x7f000001"], ["0x7f.1"], ["127.1"], ["0177.0.0.1"], ["0x7f.0.0.1"], ["2852039166"], ["0xa9fea9fe"]])(
      "hard-blocks the numeric name %j in every mode",
      (name) => {
        expect(check(connect(name))).toEqual({ verdict: "block", reasons: ["invalid-name", "no-name"] });
        expect(check(query(name))).toEqual({ verdict: "block", reasons: ["invalid-name", "no-name"] });
      },
    );

    it("cannot declare a numeric name to reach loopback", () => {
      expect(() => context(mode, { allow: [{ host: "2130706433" }] })).toThrow(/is not a valid host name/);
      expect(() => context(mode, { allow: [{ host: "*.0x7f.1" }] })).toThrow(/is not a valid host/);
    });
  });

  it("follows the context's mode, not the policy's", () => {
    const flipped = context(mode, { ...EGRESS, mode: mode === "enforcing" ? "observing" : "enforcing" });
    expect(check(connect("evil.com"), flipped)).toEqual({ verdict: violation, reasons: ["undeclared-host"] });
  });
});

describe("permits", () => {
  it("lets everything but block through", () => {
    expect(permits({ verdict: "allow", reasons: [] })).toBe(true);
    expect(permits({ verdict: "flag", reasons: ["tunnel-entropy"] })).toBe(true);
    expect(permits({ verdict: "would-block", reasons: ["undeclared-host"] })).toBe(true);
    expect(permits({ verdict: "block", reasons: ["undeclared-host"] })).toBe(false);
  });
});
