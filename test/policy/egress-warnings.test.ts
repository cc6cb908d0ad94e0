import { describe, expect, it } from "vitest";
import { classifyIp, parseIp } from "../../src/core/ip.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { egressWarnings, formatIssue, LOCAL_RANGES, parsePolicyText, publicSuffixSection } from "../../src/policy/index.js";

const policy = (...allow: ({ host: string } | { cidr: string })[]) => PolicySchema.parse({ version: 1, name: "a", server: { npm: { package: "a", version: "1.0.0" } }, egress: { allow } });
const codes = (...allow: ({ host: string } | { cidr: string })[]): string[] => egressWarnings(policy(...allow)).map((w) => w.code);

describe("a wildcard directly over a public suffix", () => {
  it.each(["*.com", "*.co.uk", "*.CO.UK.", "*.github.io", "*.s3.amazonaws.com", "*.公司.cn", "*.foo.ck"])("warns on %s", (host) => {
    const [warning, ...rest] = egressWarnings(policy({ host: "api.example.com" }, { host }));
    expect(rest).toEqual([]);
    expect(warning).toMatchObject({ path: ["egress", "allow", 1, "host"], code: "wildcard_over_public_suffix" });
  });

  it("says which suffix and what to write instead, and marks the list's private section", () => {
    expect(egressWarnings(policy({ host: "*.co.uk" }))[0]?.message).toBe(
      '*.co.uk is a wildcard directly over "co.uk", a public suffix (Public Suffix List): it matches any domain anyone can register there, so the server can reach hosts an attacker controls; name the domain you mean, e.g. *.example.co.uk',
    );
    expect(egressWarnings(policy({ host: "*.github.io" }))[0]?.message).toContain('"github.io", a public suffix (Public Suffix List, private section: a shared hosting or cloud suffix): it matches any name anyone can claim there');
  });

  it.each(["*.example.com", "*.example.co.uk", "*.amazonaws.com", "*.test", "*.internal", "*.allowed.test", "com", "co.uk", "github.io"])("does not warn on %s", (host) => {
    expect(codes({ host })).toEqual([]);
  });

  it("reads the Public Suffix List, and not tldts's rule that any unknown TLD is a suffix", () => {
    expect([publicSuffixSection("com"), publicSuffixSection("github.io"), publicSuffixSection("test"), publicSuffixSection("example.com")]).toEqual(["icann", "private", undefined, undefined]);
  });
});

describe("a CIDR rule over loopback, link-local or metadata addresses", () => {
  it.each([
    ["0.0.0.0/0", "loopback (127.0.0.0/8), link-local (169.254.0.0/16), cloud metadata (169.254.169.254, 169.254.170.2, 100.100.100.200, 192.0.0.192) and unspecified (0.0.0.0/8)"],
    ["127.0.0.0/8", "loopback (127.0.0.0/8)"],
    ["127.0.0.1", "loopback (127.0.0.0/8)"],
    ["169.254.0.0/16", "link-local (169.254.0.0/16) and cloud metadata (169.254.169.254, 169.254.170.2)"],
    ["169.254.169.254/32", "link-local (169.254.0.0/16) and cloud metadata (169.254.169.254)"],
    ["100.64.0.0/10", "cloud metadata (100.100.100.200)"],
    ["100.100.100.200/32", "cloud metadata (100.100.100.200)"],
    ["192.0.0.0/24", "cloud metadata (192.0.0.192)"],
    ["fd00:ec2::254/128", "cloud metadata (fd00:ec2::254)"],
    ["fe80::/64", "link-local (fe80::/10)"],
    ["::/0", "loopback (::1), link-local (fe80::/10), cloud metadata (fd00:ec2::254) and unspecified (::)"],
  ])("warns on %s, naming %s", (cidr, covered) => {
    const [warning, ...rest] = egressWarnings(policy({ cidr: "10.0.0.0/8" }, { cidr }));
    expect(rest).toEqual([]);
    expect(warning).toMatchObject({ path: ["egress", "allow", 1, "cidr"], code: "cidr_covers_local_addresses" });
    expect(warning?.message).toBe(
      `${cidr.includes("/") ? cidr : `${cidr}/32`} includes ${covered} addresses: the server may connect to them, and a declared name that resolves into them is no longer refused (the rebinding check); narrow the range unless you mean exactly this`,
    );
  });

  it.each(["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "8.8.8.8/32", "169.253.0.0/16", "200.0.0.0/5", "2001:db8::/32", "fc00::/8"])("does not warn on %s", (cidr) => {
    expect(codes({ cidr })).toEqual([]);
  });

  it("knows each range as core/ip.ts classifies it", () => {
    for (const { cls, range } of LOCAL_RANGES) {
      const [first, last] = [range.start, range.end].map((value) => ({ text: range.cidr, version: range.version, value }));
      expect([classifyIp(first!), classifyIp(last!)], range.cidr).toEqual([cls, cls]);
    }
    expect(classifyIp(parseIp("169.254.169.254")!)).toBe("metadata");
  });
});

describe("egress warnings in a policy file", () => {
  it("are warnings with the file, line and column of the rule", () => {
    const text = 'version: 1\nname: a\nserver:\n  npm: { package: a, version: "1.0.0" }\negress:\n  allow:\n    - host: api.example.com\n    - host: "*.com"\n    - cidr: 0.0.0.0/0\n      ports: [443]\n';
    const result = parsePolicyText(text, "p.yaml");
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map((w) => [w.severity, w.code, w.line, w.col])).toEqual([
      ["warning", "wildcard_over_public_suffix", 8, 13],
      ["warning", "cidr_covers_local_addresses", 9, 13],
    ]);
    expect(formatIssue(result.warnings[0]!)).toMatch(/^p\.yaml:8:13: warning: egress\.allow\[1\]\.host: \*\.com is a wildcard directly over "com"/);
  });
});
