import { describe, expect, it } from "vitest";
import { normaliseHostName, normaliseHostNameByUrl } from "../../src/core/names.js";
import { NOT_PLAIN, normalisePlainHostName } from "../../src/core/plain-host-name.js";

/** A small seeded generator, so a failure names the same inputs on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The fast path's answer where it gives one, and that the URL-parser path agrees; NOT_PLAIN elsewhere. */
function expectSameAnswer(name: string): void {
  const fast = normalisePlainHostName(name);
  const reference = normaliseHostNameByUrl(name);
  if (fast !== NOT_PLAIN) expect(fast, JSON.stringify(name)).toBe(reference);
  expect(normaliseHostName(name), JSON.stringify(name)).toBe(reference);
}

describe("normalisePlainHostName: normaliseHostName without the URL parser, for plain names", () => {
  it("gives the URL-parser path's answer for the edge cases: numbers, punycode, hyphens, lengths, dots", () => {
    const label63 = "a".repeat(63);
    const cases = [
      "api.example.com",
      "a",
      "_dmarc.example.com",
      "a_b-c.example",
      "ab--cd.example",
      "-a.example",
      "a-.example",
      "-",
      "a..b",
      ".a",
      "a.",
      "a.b.",
      "",
      ".",
      "127.0.0.1",
      "127.1",
      "2130706433",
      "0x7f.1",
      "a.0x7f",
      "a.0x",
      "a.0x1g",
      "a.08",
      "1.2.3.example",
      "xn--nxasmq6b.example",
      "xn--a.example",
      "a.xn--zz.example",
      "xn--.example",
      "axn--b.example",
      `${label63}.example`,
      `${label63}a.example`,
      [label63, label63, label63, "a".repeat(61)].join("."),
      [label63, label63, label63, "a".repeat(62)].join("."),
      `${[label63, label63, label63, "a".repeat(61)].join(".")}.`,
      // Not plain lowercase: handed to normaliseHostName whole.
      "API.Example.com",
      " api.example.com",
      `  ${[label63, label63, label63, "a".repeat(61)].join(".")}`,
      "a b.example",
      "bücher.example",
      "a\u00ad.example",
      "a%2e.example",
      "a/b.example",
    ];
    for (const name of cases) expectSameAnswer(name);
    // The fast path answered most of them itself, and left the rest to the URL parser.
    expect(cases.filter((n) => normalisePlainHostName(n) !== NOT_PLAIN).length).toBeGreaterThan(20);
    for (const name of ["API.Example.com", " api.example.com", "bücher.example", "xn--a.example", "a.b."]) expect(normalisePlainHostName(name)).toBe(NOT_PLAIN);
  });

  it("agrees with the URL-parser path on 20 000 generated names over the plain alphabet", () => {
    const random = lcg(0x5eed);
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    const pick = (s: string): string => s[Math.floor(random() * s.length)]!;
    const label = (): string => {
      const r = random();
      if (r < 0.1) return String(Math.floor(random() * 100_000));
      if (r < 0.15) return `0x${Math.floor(random() * 4096).toString(16)}`;
      if (r < 0.2) return `xn--${pick(alphabet)}${pick(alphabet)}`;
      if (r < 0.23) return "";
      const size = r < 0.28 ? 60 + Math.floor(random() * 8) : 1 + Math.floor(random() * 12);
      return Array.from({ length: size }, () => pick(alphabet)).join("");
    };
    let valid = 0;
    let fast = 0;
    for (let i = 0; i < 20_000; i++) {
      const labels = Array.from({ length: 1 + Math.floor(random() * (random() < 0.05 ? 8 : 4)) }, label);
      const name = labels.join(".") + (random() < 0.03 ? "." : "");
      if (normaliseHostNameByUrl(name) !== undefined) valid += 1;
      if (normalisePlainHostName(name) !== NOT_PLAIN) fast += 1;
      expectSameAnswer(name);
    }
    // Both kinds of answer were exercised.
    expect(valid).toBeGreaterThan(2_000);
    expect(valid).toBeLessThan(18_000);
    expect(fast).toBeGreaterThan(10_000);
  });
});
