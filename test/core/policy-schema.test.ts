import { describe, expect, it } from "vitest";
import { MODES, policyJsonSchema, PolicySchema, RECORD_TYPES } from "../../src/core/policy/policy-schema.js";

const server = { npm: { package: "@scope/server", version: "1.2.3" } };
const base = { version: 1, name: "fixture", server };

/** Every issue as "path: message", the way a policy file error reads. */
function issues(input: unknown): string[] {
  const result = PolicySchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

const withEgress = (egress: unknown) => ({ ...base, egress });
const withAllow = (...allow: unknown[]) => withEgress({ allow });

describe("PolicySchema defaults", () => {
  it("fills in a minimal policy", () => {
    const p = PolicySchema.parse(base);
    expect(p.egress).toEqual({ mode: "enforcing", allow: [], dns: { recordTypes: ["A"] }, capture: false });
    expect(p.tools).toEqual({ deny: [] });
    expect(p.baseline).toEqual({ rateTolerance: 3 });
    expect(p.server.args).toEqual([]);
    expect(p.server.env).toEqual({});
    expect(p.server.secrets).toEqual([]);
    expect(p.server.mounts).toEqual([]);
    expect(p.server.resources).toEqual({ memory: "256m", cpus: 0.5, pids: 128 });
  });

  it("defaults an allow entry to port 443", () => {
    expect(PolicySchema.parse(withAllow({ host: "a.com" })).egress.allow).toEqual([{ host: "a.com", ports: [443] }]);
    expect(PolicySchema.parse(withAllow({ cidr: "10.0.0.0/8" })).egress.allow).toEqual([{ cidr: "10.0.0.0/8", ports: [443] }]);
  });

  it("defaults capture ports to 80 and 443", () => {
    expect(PolicySchema.parse(withEgress({ capture: {} })).egress.capture).toEqual({ ports: [80, 443] });
  });

  it("exports its modes and answerable record types", () => {
    expect(MODES).toEqual(["enforcing", "observing"]);
    expect(RECORD_TYPES).toEqual(["A", "TXT", "HTTPS", "SVCB"]);
  });
});

describe("PolicySchema: egress", () => {
  it("accepts host, wildcard and CIDR entries", () => {
    expect(
      issues(
        withAllow(
          { host: "api.example.com", ports: [443, 8443] },
          { host: "*.example.com" },
          { host: "bücher.example" },
          { cidr: "10.0.0.0/8", ports: [5432] },
          { cidr: "2001:db8::/32" },
        ),
      ),
    ).toEqual([]);
  });

  it.each([
    ["api.*.com", 'egress.allow.0.host: "api.*.com" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"'],
    ["a*.com", 'egress.allow.0.host: "a*.com" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"'],
    ["*", 'egress.allow.0.host: "*" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"'],
    ["*.", 'egress.allow.0.host: "*." is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"'],
    ["a..com", 'egress.allow.0.host: "a..com" is not a valid host name'],
    ["127.0.0.1", 'egress.allow.0.host: "127.0.0.1" is not a valid host name'],
    ["2130706433", 'egress.allow.0.host: "2130706433" is not a valid host name'],
    ["0x7f.1", 'egress.allow.0.host: "0x7f.1" is not a valid host name'],
    ["https://a.com/", 'egress.allow.0.host: "https://a.com/" is not a valid host name'],
  ])("rejects the host %j", (host, message) => {
    expect(issues(withAllow({ host }))).toEqual([message]);
  });

  it.each([["10.0.0.0/33"], ["300.1.1.1/8"], ["10.0.0.0/"], ["::/129"], ["a.com"]])("rejects the CIDR %j", (cidr) => {
    expect(issues(withAllow({ cidr }))).toEqual([`egress.allow.0.cidr: ${JSON.stringify(cidr)} is not a valid CIDR`]);
  });

  it("wants exactly one of host and cidr", () => {
    expect(issues(withAllow({ host: "a.com", cidr: "10.0.0.0/8" }))).toEqual(['egress.allow.0: an allow entry takes either "host" or "cidr", not both']);
    expect(issues(withAllow({ ports: [443] }))).toEqual(['egress.allow.0: an allow entry needs "host" or "cidr"']);
  });

  it.each([
    [0, "egress.allow.0.ports.0: 0 is not a valid port (1-65535)"],
    [65536, "egress.allow.0.ports.0: 65536 is not a valid port (1-65535)"],
    [1.5, "egress.allow.0.ports.0: 1.5 is not a valid port (an integer 1-65535)"],
    ["443", 'egress.allow.0.ports.0: "443" is not a port number'],
  ])("rejects the port %j", (port, message) => {
    expect(issues(withAllow({ host: "a.com", ports: [port] }))).toEqual([message]);
  });

  it("rejects an empty port list", () => {
    expect(issues(withAllow({ host: "a.com", ports: [] }))).toEqual(["egress.allow.0.ports: ports must list at least one port"]);
  });

  it("never lets AAAA or other record types be declared", () => {
    expect(issues(withEgress({ dns: { recordTypes: ["A", "AAAA"] } }))).toEqual([
      'egress.dns.recordTypes.1: "AAAA" is not an answerable record type; expected one of A, TXT, HTTPS, SVCB (AAAA is never answered)',
    ]);
    expect(issues(withEgress({ dns: { recordTypes: ["MX"] } }))).toHaveLength(1);
    expect(issues(withEgress({ dns: { recordTypes: ["txt"] } }))).toHaveLength(1);
  });

  it("rejects an unknown mode", () => {
    expect(issues(withEgress({ mode: "audit" }))).toEqual(['egress.mode: "audit" is not a mode; expected "enforcing" or "observing"']);
  });

  it("rejects unknown keys, so a typo never means no rules", () => {
    expect(issues({ ...base, egres: { allow: [] } })).toHaveLength(1);
    expect(issues(withEgress({ alow: [] }))).toHaveLength(1);
    expect(issues(withAllow({ host: "a.com", port: [443] }))).toHaveLength(1);
  });

  it("validates capture", () => {
    expect(issues(withEgress({ capture: true }))).toEqual([]);
    expect(issues(withEgress({ capture: { ports: [8080] } }))).toEqual([]);
    expect(issues(withEgress({ capture: "yes" }))).toHaveLength(1);
    expect(issues(withEgress({ capture: { ports: [] } }))).toHaveLength(1);
  });
});

describe("PolicySchema: the rest", () => {
  it("reports every issue at once, each with its path", () => {
    const found = issues({ version: 2, name: "Bad_Name", server: {}, egress: { allow: [{ cidr: "10.0.0.0/33" }, { host: "api.*.com" }] } });
    expect(found).toEqual(
      expect.arrayContaining([
        "version: 2 is not a supported policy version; expected 1",
        'name: "Bad_Name" is not a valid name (lowercase letters, digits and "-", at most 63)',
        'server: a server needs exactly one of "npm", "image" or "build"',
        'egress.allow.0.cidr: "10.0.0.0/33" is not a valid CIDR',
        'egress.allow.1.host: "api.*.com" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"',
      ]),
    );
    expect(found).toHaveLength(5);
  });

  it("wants exactly one server source", () => {
    expect(issues({ ...base, server: { ...server, image: { ref: "x" } } })).toEqual(['server: a server needs exactly one of "npm", "image" or "build"']);
    expect(issues({ ...base, server: { image: { ref: "x", digest: `sha256:${"a".repeat(64)}` } } })).toEqual([]);
    expect(issues({ ...base, server: { build: { context: "." } } })).toEqual([]);
  });

  it("pins npm packages to an exact version", () => {
    expect(issues({ ...base, server: { npm: { package: "p", version: "^1.0.0" } } })).toEqual([
      'server.npm.version: "^1.0.0" is not an exact version (ranges and tags are not allowed; pin e.g. "1.2.3")',
    ]);
    expect(issues({ ...base, server: { npm: { package: "p", version: "latest" } } })).toHaveLength(1);
    expect(issues({ ...base, server: { npm: { package: "p", version: "1.0.0-rc.1" } } })).toEqual([]);
    expect(issues({ ...base, server: { npm: { package: "Bad Name", version: "1.0.0" } } })).toEqual(['server.npm.package: "Bad Name" is not a valid npm package name']);
    expect(issues({ ...base, server: { npm: { package: "p", version: "1.0.0", integrity: "md5-abc" } } })).toEqual(['server.npm.integrity: "md5-abc" is not an SRI integrity string']);
  });

  it("rejects a malformed image digest", () => {
    expect(issues({ ...base, server: { image: { ref: "x", digest: "sha256:abc" } } })).toEqual(['server.image.digest: "sha256:abc" is not a sha256 digest']);
  });

  it("refuses a secret that is also a plain env value", () => {
    expect(issues({ ...base, server: { ...server, env: { TOKEN: "x" }, secrets: ["TOKEN"] } })).toEqual(['server.secrets.0: "TOKEN" is both a secret and a plain env value']);
  });

  it("validates env names and mount targets", () => {
    expect(issues({ ...base, server: { ...server, env: { "1BAD": "x" } } })).toHaveLength(1);
    expect(issues({ ...base, server: { ...server, mounts: [{ source: "/data", target: "relative" }] } })).toEqual(['server.mounts.0.target: "relative" is not an absolute container path']);
    expect(PolicySchema.parse({ ...base, server: { ...server, mounts: [{ source: "/d", target: "/d" }] } }).server.mounts[0]!.readOnly).toBe(true);
  });
});

describe("policyJsonSchema", () => {
  it("is a draft 2020-12 schema with Hangar's id", () => {
    const schema = policyJsonSchema();
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.$id).toBe("https://hangar.dev/schemas/policy-v1.json");
    expect(schema.title).toBe("Hangar policy file, version 1");
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
  });
});
