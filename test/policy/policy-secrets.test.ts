import { describe, expect, it } from "vitest";
import { formatIssue, parsePolicyText } from "../../src/policy/index.js";

const policy = (secrets: string, allow: string): string => `version: 1
name: mail
server:
  image: { ref: mail:1 }
  secrets:
${secrets}
egress:
  allow:
${allow}
`;

const INSPECTED = `    - host: api.postmarkapp.com
      inspect: true
`;

describe("server.secrets: the plain form and the inject form", () => {
  it("accepts both forms side by side; consumers still see the names, and the rules when any object form is used", () => {
    const text = policy(
      `    - name: POSTMARK_TOKEN
      inject: { host: api.postmarkapp.com, header: X-Postmark-Server-Token }
    - name: GITHUB_TOKEN
      inject: { host: api.github.com, header: Authorization, format: "Bearer {}" }
    - LEGACY_TOKEN`,
      `${INSPECTED}    - host: "*.github.com"
      inspect: true
`,
    );
    const r = parsePolicyText(text, "p.yaml");
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
    expect(r.policy.server.secrets).toEqual(["POSTMARK_TOKEN", "GITHUB_TOKEN", "LEGACY_TOKEN"]);
    expect(r.policy.server.secretRules).toEqual([
      { name: "POSTMARK_TOKEN", inject: { host: "api.postmarkapp.com", header: "X-Postmark-Server-Token" } },
      { name: "GITHUB_TOKEN", inject: { host: "api.github.com", header: "Authorization", format: "Bearer {}" } },
      { name: "LEGACY_TOKEN" },
    ]);
  });

  it("plain names alone keep the old output (no secretRules)", () => {
    const r = parsePolicyText(policy("    - LEGACY_TOKEN", INSPECTED), "p.yaml");
    expect(r.ok && r.policy.server.secretRules).toBe(undefined);
    expect(r.ok && r.policy.server.secrets).toEqual(["LEGACY_TOKEN"]);
  });

  it("an inject whose host has no inspect: true rule is refused at the host, with file:line:col", () => {
    const text = policy(
      `    - name: POSTMARK_TOKEN
      inject: { host: api.postmarkapp.com, header: X-Postmark-Server-Token }`,
      `    - host: api.postmarkapp.com
`,
    );
    const r = parsePolicyText(text, "p.yaml");
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues).toHaveLength(1);
    expect(formatIssue(r.issues[0]!)).toBe(
      'p.yaml:7:23: server.secrets[0].inject.host: "api.postmarkapp.com": POSTMARK_TOKEN can be injected only where the sidecar sees requests; add an egress.allow rule for this host with "inspect: true"',
    );
  });

  it("an inject to an undeclared host is refused; an exact rule without inspect wins over an inspecting wildcard", () => {
    const undeclared = parsePolicyText(policy(`    - name: T
      inject: { host: api.other.com, header: X-Token }`, INSPECTED), "p.yaml");
    expect(undeclared.ok).toBe(false);
    const shadowed = parsePolicyText(
      policy(`    - name: T
      inject: { host: api.github.com, header: X-Token }`, `    - host: "*.github.com"
      inspect: true
    - host: api.github.com
`),
      "p.yaml",
    );
    expect(shadowed.ok).toBe(false);
  });

  it("refuses a wildcard host, a reserved or malformed header, a format without exactly one {}, and a name listed twice", () => {
    const cases: [string, RegExp][] = [
      ['{ host: "*.postmarkapp.com", header: X-T }', /not a host name/],
      ["{ host: api.postmarkapp.com, header: Host }", /sidecar sets or drops itself/],
      ["{ host: api.postmarkapp.com, header: Proxy-Authorization }", /sidecar sets or drops itself/],
      ['{ host: api.postmarkapp.com, header: "X T" }', /not an HTTP header name/],
      ['{ host: api.postmarkapp.com, header: X-T, format: "Bearer" }', /exactly once/],
      ['{ host: api.postmarkapp.com, header: X-T, format: "{} {}" }', /exactly once/],
    ];
    for (const [inject, message] of cases) {
      const r = parsePolicyText(policy(`    - name: T\n      inject: ${inject}`, INSPECTED), "p.yaml");
      expect(r.ok, inject).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.message).join("\n"), inject).toMatch(message);
    }
    const twice = parsePolicyText(policy("    - T\n    - name: T\n      host: api.postmarkapp.com", INSPECTED), "p.yaml");
    expect(!twice.ok && twice.issues.map((i) => i.message).join()).toMatch(/listed twice/);
  });
});
