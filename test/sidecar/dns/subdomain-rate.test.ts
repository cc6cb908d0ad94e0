import { describe, expect, it } from "vitest";
import { SubdomainRate } from "../../../src/sidecar/dns/subdomain-rate.js";

function setup(options: { maxNamesPerSuffix?: number; maxSuffixes?: number } = {}) {
  let now = 0;
  const rate = new SubdomainRate({ now: () => now, ...options });
  return { rate, advance: (ms: number) => (now += ms) };
}

describe("SubdomainRate", () => {
  it("counts distinct names per suffix; a repeat does not count twice", () => {
    const { rate } = setup();
    expect(rate.observe("*.a.com", "x.a.com")).toBe(1);
    expect(rate.observe("*.a.com", "y.a.com")).toBe(2);
    expect(rate.observe("*.a.com", "x.a.com")).toBe(2);
    expect(rate.observe("*.b.com", "x.b.com")).toBe(1);
    expect(rate.count("*.a.com")).toBe(2);
    expect(rate.count("*.none.com")).toBe(0);
  });

  it("slides a 60 s window; a name seen again stays in it", () => {
    const { rate, advance } = setup();
    rate.observe("*.a.com", "x.a.com");
    advance(30_000);
    rate.observe("*.a.com", "y.a.com");
    advance(20_000);
    rate.observe("*.a.com", "x.a.com");
    advance(20_000); // y is 40 s old, x 20 s
    expect(rate.count("*.a.com")).toBe(2);
    advance(20_000); // y is 60 s old
    expect(rate.count("*.a.com")).toBe(1);
    advance(40_000);
    expect(rate.count("*.a.com")).toBe(0);
  });

  it("bounds memory: names saturate at the cap, suffixes evict the stalest", () => {
    const { rate } = setup({ maxNamesPerSuffix: 100, maxSuffixes: 2 });
    let last = 0;
    for (let i = 0; i < 10_000; i++) last = rate.observe("*.a.com", `n${i}.a.com`);
    expect(last).toBe(100);
    rate.observe("*.b.com", "x.b.com");
    rate.observe("*.c.com", "x.c.com");
    expect(rate.count("*.a.com")).toBe(0);
    expect(rate.count("*.b.com")).toBe(1);
    expect(rate.count("*.c.com")).toBe(1);
  });
});
