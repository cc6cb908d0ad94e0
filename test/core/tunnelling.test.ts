import { describe, expect, it } from "vitest";
import { DEFAULT_TUNNELLING_LIMITS, shannonEntropy, tunnellingSignals, type TunnellingLimits } from "../../src/core/tunnelling.js";

const none = { strong: [], weak: [] };
const signals = (labels: string[], unique?: number, limits: TunnellingLimits = DEFAULT_TUNNELLING_LIMITS) => tunnellingSignals(labels, unique, limits);

describe("shannonEntropy", () => {
  it.each([
    ["", 0],
    ["a", 0],
    ["aaaaaaaa", 0],
    ["ab", 1],
    ["aabb", 1],
    ["abcd", 2],
    ["abcdefgh", 3],
    ["0123456789abcdef", 4],
    ["abcdefghijklmnopqrstuvwxyz234567", 5],
  ])("%j has %d bits per character", (text, bits) => {
    expect(shannonEntropy(text)).toBeCloseTo(bits, 10);
  });

  it("weighs characters by frequency", () => {
    // p = 2/3, 1/3
    expect(shannonEntropy("aab")).toBeCloseTo(-(2 / 3) * Math.log2(2 / 3) - (1 / 3) * Math.log2(1 / 3), 12);
    expect(shannonEntropy("aaab")).toBeCloseTo(0.8112781244591328, 12);
  });

  it("does not depend on order", () => {
    expect(shannonEntropy("abcabc")).toBe(shannonEntropy("aabbcc"));
  });

  it("counts code points, not UTF-16 units", () => {
    expect(shannonEntropy("😀😀")).toBe(0);
  });
});

describe("tunnellingSignals: label length", () => {
  const limits = DEFAULT_TUNNELLING_LIMITS;

  it("has the documented defaults", () => {
    expect(limits).toEqual({ maxLabelLength: 40, softLabelLength: 24, maxEntropy: 3.9, softEntropy: 3.5, entropyMinLength: 16, maxUniqueSubdomainsPerMinute: 60 });
  });

  it("gives nothing for no controlled labels", () => {
    expect(signals([])).toEqual(none);
    expect(signals([], 10_000)).toEqual(none);
  });

  // Low-entropy filler isolates the length rule: "a" repeated has 0 bits.
  it.each([
    [24, none],
    [25, { strong: [], weak: ["tunnel-long-label"] }],
    [40, { strong: [], weak: ["tunnel-long-label"] }],
    [41, { strong: ["tunnel-long-label"], weak: [] }],
    [63, { strong: ["tunnel-long-label"], weak: [] }],
  ])("a %i-character label gives %j", (length, expected) => {
    expect(signals(["a".repeat(length)])).toEqual(expected);
  });

  it("judges the longest label, not the total", () => {
    expect(signals(["a".repeat(20), "b".repeat(20), "c".repeat(20)])).toEqual(none);
    expect(signals(["a", "b".repeat(41), "c"])).toEqual({ strong: ["tunnel-long-label"], weak: [] });
  });

  it("follows custom limits", () => {
    const strict = { ...limits, maxLabelLength: 10, softLabelLength: 5 };
    expect(signals(["aaaaa"], undefined, strict)).toEqual(none);
    expect(signals(["aaaaaa"], undefined, strict)).toEqual({ strong: [], weak: ["tunnel-long-label"] });
    expect(signals(["aaaaaaaaaaa"], undefined, strict)).toEqual({ strong: ["tunnel-long-label"], weak: [] });
  });
});

describe("tunnellingSignals: entropy", () => {
  const limits = DEFAULT_TUNNELLING_LIMITS;

  it("ignores entropy below entropyMinLength characters", () => {
    // 15 distinct characters: log2(15) ≈ 3.91 bits, above maxEntropy, but too short to judge
    const fifteen = "abcdefghijklmno";
    expect(shannonEntropy(fifteen)).toBeGreaterThan(limits.maxEntropy);
    expect(signals([fifteen])).toEqual(none);
  });

  it("measures the controlled labels joined together", () => {
    // 16 distinct characters split over labels: 4 bits over 16 characters
    expect(signals(["abcdefgh", "ijklmnop"])).toEqual({ strong: ["tunnel-entropy"], weak: [] });
  });

  it.each([
    // 16 characters: k copies of "a" plus 16-k distinct singles, either side of the thresholds
    ["abcdefghijklmnop", 4, "strong"],
    ["aabcdefghijklmno", 3.875, "weak"],
    ["aaabcdefghijklmn", (3 / 16) * Math.log2(16 / 3) + 13 / 4, "weak"],
    ["aaaabcdefghijklm", 3.5, "none"],
    ["aabbccddeeffgghh", 3, "none"],
  ])("%j (%d bits) is %s", (text, bits, level) => {
    expect(shannonEntropy(text)).toBeCloseTo(bits, 10);
    const expected = level === "strong" ? { strong: ["tunnel-entropy"], weak: [] } : level === "weak" ? { strong: [], weak: ["tunnel-entropy"] } : none;
    expect(signals([text])).toEqual(expected);
  });

  it("compares strictly: exactly maxEntropy is weak, exactly softEntropy is nothing", () => {
    const at = { ...limits, maxEntropy: 4, softEntropy: 3 };
    expect(signals(["abcdefghijklmnop"], undefined, at)).toEqual({ strong: [], weak: ["tunnel-entropy"] });
    expect(signals(["aabbccddeeffgghh"], undefined, at)).toEqual(none);
  });

  it("reports length and entropy together", () => {
    const label = "abcdefghijklmnopqrstuvwxyz234567abcdefghij"; // 42 characters, ~5 bits
    expect(signals([label])).toEqual({ strong: ["tunnel-long-label", "tunnel-entropy"], weak: [] });
  });
});

describe("tunnellingSignals: unique subdomain rate", () => {
  it("is strong only above the limit", () => {
    expect(signals(["x"], 60)).toEqual(none);
    expect(signals(["x"], 61)).toEqual({ strong: ["tunnel-unique-rate"], weak: [] });
    expect(signals(["x"], undefined)).toEqual(none);
    expect(signals(["x"], 2, { ...DEFAULT_TUNNELLING_LIMITS, maxUniqueSubdomainsPerMinute: 1 })).toEqual({ strong: ["tunnel-unique-rate"], weak: [] });
  });
});

describe("tunnellingSignals: realistic names", () => {
  // Controlled labels as they appear under a wildcard such as *.amazonaws.com.
  it.each([
    [["s3", "eu-west-1"]],
    [["my-bucket-prod"]],
    [["api"]],
    [["www"]],
    [["storage"]],
    [["registry-1"]],
    [["fonts", "googleapis"]],
    [["login", "microsoftonline"]],
    [["d111111abcdef8"]],
    [["abc123def4"]],
    [["deadbeefcafebabe"]],
    [["my-bucket-prod", "s3", "eu-west-1"]],
    [["ec2-54-123-45-67", "compute-1"]],
    // all hex once the hyphens go, but at most 15 characters: too short to judge
    [["ec2-255-255-255-255"]],
    [["ip-10-0-0-1", "ec2", "internal"]],
    [["cognito-idp", "eu-west-1"]],
    [["my-cool-bucket-name-2024"]],
  ])("%j is no strong signal", (labels) => {
    expect(signals(labels).strong).toEqual([]);
  });

  // Data an exfiltrator would encode: base32 (dnscat, iodine), hex (dnscat2), base36.
  it.each([
    ["base32", ["iflvgx2tivbverkul5augq2fknjv6s2f"]],
    ["base32", ["obqxg43xn5zgipliovxhizlsgi5xk43f"]],
    ["base32 split", ["iflvgx2tivbverku", "l5augq2fknjv6s2f"]],
    ["base36", ["k3j9x0q7m2v8w1z5r4t6y"]],
    ["hex, 32 chars", ["2d711642b726b04401627ca9fbac32f5"]],
    ["hex, 16 chars", ["9f86d081884c7d65"]],
    ["hex, two labels", ["2d711642b726b044", "01627ca9fbac32f5"]],
    ["hex, 40-char labels", ["a3f1c9e27b4d08a6f5e1c3b7d9024e6a8c1f3b5d", "7e9a2c4f6b8d0e1a3c5f7b9d2e4a6c8f0b1d3e5a"]],
    ["hex with hyphens", ["2d71-1642-b726-b044-0162-7ca9"]],
    ["hex, 40 chars", ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4"]],
  ])("a %s blob is a strong signal", (_kind, labels) => {
    expect(signals(labels).strong).toContain("tunnel-entropy");
  });
});
