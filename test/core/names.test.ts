import { describe, expect, it } from "vitest";
import { formatHostPattern, hostPatternMatches, labelsUnder, normaliseHostName, parseHostPattern, type HostPattern } from "../../src/core/names.js";

const wildcard = (suffix: string): HostPattern => ({ kind: "wildcard", suffix });
const exact = (name: string): HostPattern => ({ kind: "exact", name });

describe("normaliseHostName", () => {
  it.each([
    ["api.example.com", "api.example.com"],
    ["API.Example.COM", "api.example.com"],
    ["api.example.com.", "api.example.com"],
    ["API.EXAMPLE.COM.", "api.example.com"],
    ["  api.example.com  ", "api.example.com"],
    ["localhost", "localhost"],
    ["_dmarc.example.com", "_dmarc.example.com"],
    ["1.example.com", "1.example.com"],
    ["a-b.example.com", "a-b.example.com"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["BÜCHER.example", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    // IDNA mappings (UTS 46): fullwidth letters and dots fold to their ASCII forms.
    ["ａｐｉ.example.com", "api.example.com"],
    ["api\uff0eexample.com", "api.example.com"],
    ["api\u3002example.com", "api.example.com"],
    // Homograph: Cyrillic "а" is a different name, never the Latin one.
    ["\u0430pple.com", "xn--pple-43d.com"],
  ])("%j → %j", (raw, expected) => {
    expect(normaliseHostName(raw)).toBe(expected);
  });

  it("keeps a 63-character label and rejects a 64-character one", () => {
    expect(normaliseHostName(`${"a".repeat(63)}.com`)).toBe(`${"a".repeat(63)}.com`);
    expect(normaliseHostName(`${"a".repeat(64)}.com`)).toBeUndefined();
  });

  it("keeps a 253-character name and rejects a 254-character one", () => {
    const at253 = [..."abc"].map((c) => c.repeat(63)).join(".") + "." + "d".repeat(61);
    expect(at253).toHaveLength(253);
    expect(normaliseHostName(at253)).toBe(at253);
    expect(normaliseHostName(at253 + ".")).toBe(at253);
    expect(normaliseHostName(at253 + "d")).toBeUndefined();
  });

  it("rejects a very long input without trying to map it", () => {
    expect(normaliseHostName("a.".repeat(100_000) + "com")).toBeUndefined();
  });

  it.each([
    [""],
    ["."],
    [" "],
    ["a..com"],
    [".a.com"],
    ["a.com.."],
    ["-a.com"],
    ["a-.com"],
    ["a b.com"],
    ["a.com:443"],
    ["a/b.com"],
    ["a@b.com"],
    ["a.com\0.evil.com"],
    ["*.a.com"],
    ["a*.com"],
    ["xn--zz"],
    ["[a.com]"],
  ])("rejects %j", (raw) => {
    expect(normaliseHostName(raw)).toBeUndefined();
  });

  // A resolver (inet_aton, WHATWG URL) reads these as IPv4 addresses, so they must never
  // pass as names: a name that compares as "declared" would then dial 127.0.0.1.
  it.each([
    ["127.0.0.1"],
    ["127.0.0.1."],
    ["169.254.169.254"],
    ["2130706433"],
    ["2130706433."],
    ["0x7f000001"],
    ["0x7f.1"],
    ["0x7F.0x0.0x0.0x1"],
    ["127.1"],
    ["0177.0.0.1"],
    ["017700000001"],
    ["a.0x10"],
    ["a.0x"],
    ["example.123"],
    ["1.2.3.4.5"],
  ])("rejects the IPv4-looking name %j", (raw) => {
    expect(normaliseHostName(raw)).toBeUndefined();
  });

  it.each([["::1"], ["[::1]"], ["fe80::1%eth0"], ["::ffff:127.0.0.1"], ["2001:db8::1"]])("rejects the IPv6 literal %j", (raw) => {
    expect(normaliseHostName(raw)).toBeUndefined();
  });

  // Percent-encoding is no part of any DNS name, SNI or Host; decoding it would make the
  // name compared differ from the bytes an adapter might pass on.
  it.each([["a%2ecom"], ["api.example%2ecom"], ["%61pi.example.com"]])("rejects the percent-encoded %j", (raw) => {
    expect(normaliseHostName(raw)).toBeUndefined();
  });

  // domainToASCII parses like a URL host: it cut these down to the declared name, so an
  // SNI or DNS question "api.example.com#.evil.com" compared as "api.example.com".
  it.each([
    ["api.example.com#.evil.com"],
    ["api.example.com/.evil.com"],
    ["api.example.com?.evil.com"],
    ["api.example.com\\.evil.com"],
    ["api.example.com/"],
    ["api\texample.com"],
    ["api.exam\nple.com"],
    ["api.exam\rple.com"],
  ])("rejects %j instead of cutting it at a URL delimiter", (raw) => {
    expect(normaliseHostName(raw)).toBeUndefined();
  });

  it("keeps a last label that only starts like a number", () => {
    expect(normaliseHostName("a.0xg")).toBe("a.0xg");
    expect(normaliseHostName("a.1a")).toBe("a.1a");
  });
});

describe("parseHostPattern", () => {
  it.each([
    ["api.example.com", exact("api.example.com")],
    ["API.Example.com.", exact("api.example.com")],
    ["bücher.example", exact("xn--bcher-kva.example")],
    ["*.example.com", wildcard("example.com")],
    ["*.EXAMPLE.com.", wildcard("example.com")],
    ["*.bücher.example", wildcard("xn--bcher-kva.example")],
    ["*.a.b.c.example.com", wildcard("a.b.c.example.com")],
  ])("%j → %j", (raw, expected) => {
    expect(parseHostPattern(raw)).toEqual(expected);
  });

  it.each([
    ["*"],
    ["*."],
    ["*.*.com"],
    ["**.a.com"],
    ["*a.com"],
    ["a*.com"],
    ["api.*.com"],
    ["api.example.*"],
    ["*.a..com"],
    [".*.a.com"],
    ["a.com*"],
    [""],
    ["127.0.0.1"],
    ["10.0.0.0/8"],
    ["2130706433"],
    ["*.2130706433"],
    ["*.127.0.0.1"],
    ["0x7f.1"],
    ["::1"],
  ])("rejects %j", (raw) => {
    expect(parseHostPattern(raw)).toBeUndefined();
  });
});

describe("hostPatternMatches", () => {
  it("matches an exact name only by equality", () => {
    expect(hostPatternMatches(exact("a.com"), "a.com")).toBe(true);
    expect(hostPatternMatches(exact("a.com"), "x.a.com")).toBe(false);
    expect(hostPatternMatches(exact("a.com"), "aa.com")).toBe(false);
  });

  it("matches a wildcard's subdomains at any depth", () => {
    expect(hostPatternMatches(wildcard("a.com"), "x.a.com")).toBe(true);
    expect(hostPatternMatches(wildcard("a.com"), "x.y.z.a.com")).toBe(true);
  });

  it("never matches the wildcard's apex", () => {
    expect(hostPatternMatches(wildcard("a.com"), "a.com")).toBe(false);
  });

  it("does not match a name that merely ends with the suffix text", () => {
    expect(hostPatternMatches(wildcard("a.com"), "evila.com")).toBe(false);
    expect(hostPatternMatches(wildcard("a.com"), "a.com.evil.com")).toBe(false);
    expect(hostPatternMatches(wildcard("a.com"), "xa.com")).toBe(false);
  });
});

describe("formatHostPattern", () => {
  it("writes patterns back in policy form", () => {
    expect(formatHostPattern(exact("a.com"))).toBe("a.com");
    expect(formatHostPattern(wildcard("a.com"))).toBe("*.a.com");
  });

  it("round-trips through parseHostPattern", () => {
    for (const raw of ["a.com", "*.a.com", "*.x.y.a.com"]) {
      expect(formatHostPattern(parseHostPattern(raw)!)).toBe(raw);
    }
  });
});

describe("labelsUnder", () => {
  it("returns the labels an exfiltrator controls beneath a wildcard", () => {
    expect(labelsUnder(wildcard("a.com"), "x.a.com")).toEqual(["x"]);
    expect(labelsUnder(wildcard("a.com"), "x.y.z.a.com")).toEqual(["x", "y", "z"]);
  });

  it("returns nothing under an exact rule", () => {
    expect(labelsUnder(exact("a.com"), "a.com")).toEqual([]);
  });
});
