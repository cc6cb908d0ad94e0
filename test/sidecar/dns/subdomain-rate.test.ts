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

  it("sums the weights of the names in the window; a repeat replaces its weight, expiry and eviction remove it", () => {
    const { rate, advance } = setup({ maxNamesPerSuffix: 3 });
    rate.observe("*.a.com", "x.a.com", 10);
    rate.observe("*.a.com", "y.a.com", 5);
    rate.observe("*.a.com", "x.a.com", 12);
    expect(rate.weight("*.a.com")).toBe(17);
    expect(rate.has("*.a.com", "y.a.com")).toBe(true);
    advance(30_000);
    rate.observe("*.a.com", "z.a.com", 1);
    rate.observe("*.a.com", "w.a.com", 2); // evicts y, the stalest
    expect(rate.has("*.a.com", "y.a.com")).toBe(false);
    expect(rate.weight("*.a.com")).toBe(15);
    advance(30_000); // x is 60 s old
    expect(rate.weight("*.a.com")).toBe(3);
    advance(30_000);
    expect(rate.weight("*.a.com")).toBe(0);
    expect(rate.weight("*.none.com")).toBe(0);
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
