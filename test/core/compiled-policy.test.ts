import { describe, expect, it } from "vitest";
import { compilePolicy, findCidrRule, findHostRule, NAMED_PROTOCOL_PORTS, policyWarnings } from "../../src/core/policy/compiled-policy.js";
import { PolicySchema, type PolicyInput } from "../../src/core/policy/policy-schema.js";
import { parseIp, type ParsedIp } from "../../src/core/ip.js";
import { testPolicy } from "../support/sidecar-context.js";

type Egress = NonNullable<PolicyInput["egress"]>;
const compile = (egress: Egress) => testPolicy({ name: "fixture", egress });
const ip = (text: string): ParsedIp => parseIp(text)!;

describe("compilePolicy", () => {
  it("takes name, mode and defaults from the policy", () => {
    const p = compile({});
    expect(p.name).toBe("fixture");
    expect(p.mode).toBe("enforcing");
    expect([...p.recordTypes]).toEqual(["A"]);
    expect(p.capture).toEqual({ enabled: false, ports: [] });
    expect(p.exactHosts.size).toBe(0);
    expect(p.wildcardHosts).toEqual([]);
    expect(p.cidrRules).toEqual([]);
    expect(p.transparentPorts).toEqual([]);
    expect(p.portOwners.size).toBe(0);
    expect(compile({ mode: "observing" }).mode).toBe("observing");
  });

  it("keeps the validated policy as its source", () => {
    const source = PolicySchema.parse({ version: 1, name: "x", server: { npm: { package: "p", version: "1.0.0" } } });
    expect(compilePolicy(source).source).toBe(source);
  });

  it("indexes exact hosts by their normalised name, with port 443 by default", () => {
    const p = compile({ allow: [{ host: "API.Example.com." }, { host: "bücher.example", ports: [8443] }] });
    expect([...p.exactHosts.keys()]).toEqual(["api.example.com", "xn--bcher-kva.example"]);
    const api = p.exactHosts.get("api.example.com")!;
    expect(api).toMatchObject({ index: 0, text: "api.example.com", pattern: { kind: "exact", name: "api.example.com" } });
    expect([...api.ports]).toEqual([443]);
    expect(p.exactHosts.get("xn--bcher-kva.example")!.index).toBe(1);
  });

  it("merges the ports of duplicate exact hosts, however they are written", () => {
    const p = compile({
      allow: [{ host: "api.example.com", ports: [443] }, { cidr: "10.0.0.0/8" }, { host: "API.example.com.", ports: [8443, 443] }],
    });
    expect(p.exactHosts.size).toBe(1);
    const rule = p.exactHosts.get("api.example.com")!;
    expect(rule.index).toBe(0);
    expect([...rule.ports].sort((a, b) => a - b)).toEqual([443, 8443]);
  });

  // Before the fix the second "*.example.com" entry was shadowed by the first: the most
  // specific wildcard wins with a strict ">", so ports 8443 were never allowed.
  it("merges the ports of duplicate wildcards", () => {
    const p = compile({ allow: [{ host: "*.example.com", ports: [443] }, { host: "*.EXAMPLE.com.", ports: [8443] }] });
    expect(p.wildcardHosts).toHaveLength(1);
    expect(p.wildcardHosts[0]).toMatchObject({ index: 0, text: "*.example.com", pattern: { kind: "wildcard", suffix: "example.com" } });
    expect([...p.wildcardHosts[0]!.ports].sort((a, b) => a - b)).toEqual([443, 8443]);
    expect([...findHostRule(p, "x.example.com")!.ports].sort((a, b) => a - b)).toEqual([443, 8443]);
  });

  it("keeps CIDR rules with their ports and canonical text", () => {
    const p = compile({ allow: [{ host: "a.com" }, { cidr: "10.0.0.0/8", ports: [5432] }, { cidr: "2001:db8::/32" }] });
    expect(p.cidrRules.map((r) => ({ index: r.index, text: r.text, ports: [...r.ports] }))).toEqual([
      { index: 1, text: "10.0.0.0/8", ports: [5432] },
      { index: 2, text: "2001:db8::/32", ports: [443] },
    ]);
  });

  it("holds the declared record types", () => {
    const p = compile({ dns: { recordTypes: ["A", "TXT", "HTTPS"] } });
    expect([...p.recordTypes].sort()).toEqual(["A", "HTTPS", "TXT"]);
  });

  it.each([
    [false, { enabled: false, ports: [] }],
    [true, { enabled: true, ports: [80, 443] }],
    [{}, { enabled: true, ports: [80, 443] }],
    [{ ports: [8080] }, { enabled: true, ports: [8080] }],
  ] as const)("capture %j compiles to %j", (capture, expected) => {
    expect(compile({ capture: capture as Egress["capture"] }).capture).toEqual(expected);
  });
});

describe("transparentPorts", () => {
  it("lists every host port once, sorted", () => {
    const p = compile({
      allow: [
        { host: "a.com", ports: [8443, 443] },
        { host: "*.b.com", ports: [443, 5432] },
        { host: "c.com", ports: [80] },
      ],
    });
    expect(p.transparentPorts).toEqual([80, 443, 5432, 8443]);
  });

  it("leaves out CIDR-only ports: CIDR destinations go through the explicit proxy", () => {
    expect(compile({ allow: [{ cidr: "10.0.0.0/8", ports: [5432] }] }).transparentPorts).toEqual([]);
  });

  it("adds the capture ports", () => {
    expect(compile({ allow: [{ host: "a.com", ports: [5432] }], capture: true }).transparentPorts).toEqual([80, 443, 5432]);
    expect(compile({ capture: { ports: [8080, 25] } }).transparentPorts).toEqual([25, 8080]);
  });
});

describe("portOwners", () => {
  it("names the single exact host that declares a port", () => {
    const p = compile({ allow: [{ host: "db.example.com", ports: [5432] }, { host: "api.example.com", ports: [443] }] });
    expect(p.portOwners.get(5432)).toBe("db.example.com");
    expect(p.portOwners.get(443)).toBe("api.example.com");
    expect(p.portOwners.has(80)).toBe(false);
  });

  it("stays unique when one host is declared twice", () => {
    const p = compile({ allow: [{ host: "db.example.com", ports: [5432] }, { host: "DB.example.com.", ports: [5432, 6432] }] });
    expect(p.portOwners.get(5432)).toBe("db.example.com");
    expect(p.portOwners.get(6432)).toBe("db.example.com");
  });

  it("is ambiguous when two hosts declare the port", () => {
    const p = compile({ allow: [{ host: "a.com", ports: [5432] }, { host: "b.com", ports: [5432] }] });
    expect(p.portOwners.get(5432)).toBe("ambiguous");
  });

  it("is ambiguous for a wildcard, alone or with an exact host", () => {
    expect(compile({ allow: [{ host: "*.a.com", ports: [5432] }] }).portOwners.get(5432)).toBe("ambiguous");
    expect(compile({ allow: [{ host: "db.a.com", ports: [5432] }, { host: "*.b.com", ports: [5432] }] }).portOwners.get(5432)).toBe("ambiguous");
  });

  it("ignores CIDR rules", () => {
    const p = compile({ allow: [{ host: "db.a.com", ports: [5432] }, { cidr: "10.0.0.0/8", ports: [5432] }] });
    expect(p.portOwners.get(5432)).toBe("db.a.com");
  });
});

describe("findHostRule", () => {
  const p = compile({
    allow: [
      { host: "*.example.com", ports: [443] },
      { host: "*.eu.example.com", ports: [8443] },
      { host: "api.eu.example.com", ports: [9443] },
      { host: "other.org", ports: [443] },
    ],
  });

  it("prefers an exact rule over any wildcard", () => {
    expect(findHostRule(p, "api.eu.example.com")?.text).toBe("api.eu.example.com");
  });

  it("prefers the most specific wildcard", () => {
    expect(findHostRule(p, "x.eu.example.com")?.text).toBe("*.eu.example.com");
    expect(findHostRule(p, "a.b.eu.example.com")?.text).toBe("*.eu.example.com");
    expect(findHostRule(p, "x.us.example.com")?.text).toBe("*.example.com");
  });

  it("picks the most specific wildcard whatever the order of entries", () => {
    const reversed = compile({ allow: [{ host: "*.eu.example.com" }, { host: "*.example.com" }] });
    expect(findHostRule(reversed, "x.eu.example.com")?.text).toBe("*.eu.example.com");
    expect(findHostRule(reversed, "x.example.com")?.text).toBe("*.example.com");
  });

  it("does not match a wildcard's apex", () => {
    expect(findHostRule(p, "example.com")).toBeUndefined();
    expect(findHostRule(p, "eu.example.com")?.text).toBe("*.example.com");
  });

  it("returns nothing for an undeclared name", () => {
    expect(findHostRule(p, "example.org")).toBeUndefined();
    expect(findHostRule(p, "evilexample.com")).toBeUndefined();
    expect(findHostRule(p, "x.other.org")).toBeUndefined();
  });
});

describe("findCidrRule", () => {
  const p = compile({
    allow: [
      { cidr: "10.0.0.0/8", ports: [5432] },
      { cidr: "10.1.0.0/16", ports: [443] },
      { cidr: "2001:db8::/32", ports: [443] },
    ],
  });

  it("finds the rule that holds the address and the port", () => {
    expect(findCidrRule(p, ip("10.9.9.9"), 5432)?.text).toBe("10.0.0.0/8");
    expect(findCidrRule(p, ip("10.1.2.3"), 443)?.text).toBe("10.1.0.0/16");
    expect(findCidrRule(p, ip("10.1.2.3"), 5432)?.text).toBe("10.0.0.0/8");
    expect(findCidrRule(p, ip("2001:db8::1"), 443)?.text).toBe("2001:db8::/32");
  });

  it("returns nothing when the address matches but the port does not", () => {
    expect(findCidrRule(p, ip("10.9.9.9"), 443)).toBeUndefined();
    expect(findCidrRule(p, ip("2001:db8::1"), 80)).toBeUndefined();
  });

  it("returns the first rule holding the address when no port is given", () => {
    expect(findCidrRule(p, ip("10.1.2.3"))?.text).toBe("10.0.0.0/8");
    expect(findCidrRule(p, ip("10.9.9.9"))?.text).toBe("10.0.0.0/8");
  });

  it("matches IPv4-mapped IPv6 by the IPv4 rule", () => {
    expect(findCidrRule(p, ip("::ffff:10.9.9.9"), 5432)?.text).toBe("10.0.0.0/8");
  });

  it("returns nothing outside every rule", () => {
    expect(findCidrRule(p, ip("11.0.0.0"))).toBeUndefined();
    expect(findCidrRule(p, ip("9.255.255.255"), 5432)).toBeUndefined();
    expect(findCidrRule(p, ip("2001:db9::1"))).toBeUndefined();
  });
});

describe("policyWarnings", () => {
  it("names HTTP-ish ports that normally carry a name", () => {
    expect([...NAMED_PROTOCOL_PORTS].sort((a, b) => a - b)).toEqual([80, 443, 8080, 8443]);
  });

  it("warns about an ambiguous port whose protocol carries no name, at the first entry declaring it", () => {
    const p = compile({ allow: [{ host: "a.com", ports: [443] }, { cidr: "10.0.0.0/8", ports: [5432] }, { host: "db1.com", ports: [5432] }, { host: "db2.com", ports: [5432] }] });
    const warnings = policyWarnings(p);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.path).toEqual(["egress", "allow", 2, "ports"]);
    expect(warnings[0]!.message).toMatch(/^port 5432 is ambiguous/);
  });

  it("warns about a non-HTTP port under a wildcard", () => {
    const warnings = policyWarnings(compile({ allow: [{ host: "*.db.com", ports: [5432] }] }));
    expect(warnings.map((w) => w.path)).toEqual([["egress", "allow", 0, "ports"]]);
  });

  it("does not warn about ambiguous HTTP and TLS ports, nor about uniquely owned ones", () => {
    const p = compile({
      allow: [
        { host: "a.com", ports: [80, 443, 8080, 8443, 5432] },
        { host: "*.b.com", ports: [80, 443, 8080, 8443] },
      ],
    });
    expect(policyWarnings(p)).toEqual([]);
  });

  it("warns when capture makes the allow rules dead", () => {
    expect(policyWarnings(compile({ allow: [{ host: "a.com" }], capture: true }))).toEqual([
      { path: ["egress", "capture"], message: "capture is on, so nothing leaves: the allow rules are reported but never used" },
    ]);
    expect(policyWarnings(compile({ allow: [{ cidr: "10.0.0.0/8" }], capture: true }))).toHaveLength(1);
    expect(policyWarnings(compile({ capture: true }))).toEqual([]);
  });
});

describe("compilePolicy on unvalidated input", () => {
  it("throws rather than compile a host or CIDR the schema would reject", () => {
    const base = PolicySchema.parse({ version: 1, name: "x", server: { npm: { package: "p", version: "1.0.0" } } });
    const withAllow = (allow: unknown[]) => ({ ...base, egress: { ...base.egress, allow } }) as typeof base;
    expect(() => compilePolicy(withAllow([{ host: "api.*.com", ports: [443] }]))).toThrow(/unvalidated host/);
    expect(() => compilePolicy(withAllow([{ cidr: "10.0.0.0/33", ports: [443] }]))).toThrow(/unvalidated cidr/);
  });
});
