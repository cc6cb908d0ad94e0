import { describe, expect, it } from "vitest";
import { nameBits } from "../../src/core/tunnelling.js";
import { NameAccounting } from "../../src/sidecar/name-accounting.js";
import { testPolicy } from "../support/sidecar-context.js";

const policy = testPolicy({ name: "fixture", egress: { allow: [{ host: "*.allowed.test" }, { host: "*.other.test" }, { host: "api.exact.test" }] } });

function setup(options: { budgetWindowMs?: number } = {}) {
  let now = 1_000_000;
  const names = new NameAccounting({ now: () => now, ...options });
  return { names, advance: (ms: number) => (now += ms) };
}

describe("NameAccounting", () => {
  it("counts distinct names a minute under each wildcard, with the bits they carry", () => {
    const { names } = setup();
    expect(names.observe(policy, "a.allowed.test")).toEqual({ uniqueSubdomainsPerMinute: 1, subdomainBitsPerMinute: nameBits(["a"]), upstreamLookups: 1 });
    names.observe(policy, "bb.allowed.test");
    // Asked again: refreshed, never counted twice.
    const again = names.observe(policy, "a.allowed.test");
    expect(again.uniqueSubdomainsPerMinute).toBe(2);
    expect(again.subdomainBitsPerMinute).toBeCloseTo(nameBits(["a"]) + nameBits(["bb"]), 10);
    expect(names.observe(policy, "x.other.test").uniqueSubdomainsPerMinute).toBe(1);
  });

  it("has nothing to say about an exact host or an undeclared name", () => {
    const { names } = setup();
    expect(names.observe(policy, "api.exact.test")).toEqual({});
    expect(names.observe(policy, "evil.test")).toEqual({});
    names.charge(policy, "evil.test");
  });

  it("spends the budget only on names charged, and a charged name never counts again", () => {
    const { names } = setup();
    expect(names.observe(policy, "a.allowed.test").upstreamLookups).toBe(1);
    // Asked but not looked up (refused): the budget is untouched.
    expect(names.observe(policy, "b.allowed.test").upstreamLookups).toBe(1);
    names.charge(policy, "a.allowed.test");
    expect(names.observe(policy, "a.allowed.test").upstreamLookups).toBe(1);
    expect(names.observe(policy, "b.allowed.test").upstreamLookups).toBe(2);
    names.charge(policy, "b.allowed.test");
    names.charge(policy, "b.allowed.test");
    expect(names.observe(policy, "c.allowed.test").upstreamLookups).toBe(3);
    expect(names.observe(policy, "c.other.test").upstreamLookups).toBe(1);
  });

  it("forgets the minute after a minute, and the budget after its window", () => {
    const { names, advance } = setup({ budgetWindowMs: 3_600_000 });
    names.observe(policy, "a.allowed.test");
    names.charge(policy, "a.allowed.test");
    advance(60_000);
    const later = names.observe(policy, "b.allowed.test");
    expect(later.uniqueSubdomainsPerMinute).toBe(1);
    expect(later.subdomainBitsPerMinute).toBe(nameBits(["b"]));
    expect(later.upstreamLookups).toBe(2);
    advance(3_600_000);
    expect(names.observe(policy, "c.allowed.test").upstreamLookups).toBe(1);
  });
});
