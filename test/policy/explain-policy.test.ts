import { describe, expect, it } from "vitest";
import { explainPolicy, formatExplanation, loadPolicyFile, parsePolicyText, type PolicyExplanation } from "../../src/policy/index.js";

function explain(text: string): { x: PolicyExplanation; text: string } {
  const result = parsePolicyText(text, "t.yaml");
  if (!result.ok) throw new Error(`invalid test policy: ${JSON.stringify(result.issues)}`);
  const x = explainPolicy(result.compiled);
  return { x, text: formatExplanation(x) };
}

const POLICY = `
version: 1
name: demo
description: a demo
server:
  npm: { package: "@acme/mcp", version: "1.2.3" }
  env: { LOG_LEVEL: "very-visible-plain-value" }
  secrets: [ACME_TOKEN]
  mounts:
    - { source: ./data, target: /data }
    - { source: ./out, target: /out, readOnly: false }
  resources: { memory: 512m, cpus: 1, pids: 64 }
egress:
  mode: observing
  allow:
    - host: api.acme.test
      ports: [80, 443]
    - host: "*.cdn.acme.test"
    - host: "*.acme.test"
    - host: acme.test
    - cidr: 10.20.0.0/16
      ports: [5432]
  dns: { recordTypes: [A, TXT] }
tools:
  allow: [send_*]
  deny: [send_bulk]
  rateLimit: { perMinute: 30 }
baseline: { file: baselines/demo.json, rateTolerance: 2 }
`;

describe("explainPolicy", () => {
  const { x, text } = explain(POLICY);

  it("says what the mode means", () => {
    expect(x.egress.mode).toBe("observing");
    expect(text).toContain("mode: observing - traffic flows; anything enforcing mode would block is recorded as would-block");
  });

  it("says that observing mode still never looks up a name the rules refuse", () => {
    expect(x.egress.modeMeaning).toContain("a name the rules refuse (undeclared, or looking like DNS tunnelling) is answered NXDOMAIN and never looked up upstream");
    expect(x.egress.modeMeaning).toContain("A declared name that only drifts from a frozen baseline is still looked up");
    expect(x.egress.summary).toBe("5 allow rules; everything else is recorded as would-block (undeclared names still get NXDOMAIN, never looked up)");
    expect(text).toContain("every other name gets NXDOMAIN, is recorded as would-block and is never looked up upstream; neither is a name that looks like DNS tunnelling");
  });

  it("lists each allow rule with its ports, and whether a wildcard's apex is covered", () => {
    expect(x.egress.hosts.map((h) => [h.rule, h.ports, h.apexCovered])).toEqual([
      ["api.acme.test", [80, 443], undefined],
      ["*.cdn.acme.test", [443], false],
      ["*.acme.test", [443], true],
      ["acme.test", [443], undefined],
    ]);
    expect(text).toContain("- api.acme.test on ports 80, 443: this name only, not its subdomains");
    expect(text).toContain("- *.cdn.acme.test on port 443: any name under cdn.acme.test (such as api.cdn.acme.test or a.b.cdn.acme.test); cdn.acme.test itself is NOT covered");
    expect(text).toContain("acme.test itself has its own rule");
  });

  it("lists CIDR rules", () => {
    expect(x.egress.cidrs).toEqual([expect.objectContaining({ cidr: "10.20.0.0/16", version: 4, ports: [5432] })]);
    expect(text).toContain("- 10.20.0.0/16 on port 5432: IPv4 addresses in this range, reached through the explicit proxy");
  });

  it("names the DNS record types answered, and that AAAA never is", () => {
    expect(x.egress.dns.answered).toEqual(["A", "TXT"]);
    expect(x.egress.dns.neverAnswered).toEqual(["AAAA"]);
    expect(text).toContain("declared names get A, TXT answers");
    expect(text).toContain("AAAA is never answered");
  });

  it("lists transparent ports and capture", () => {
    expect(x.egress.transparentPorts).toEqual([80, 443]);
    expect(x.egress.capture.enabled).toBe(false);
    expect(text).toContain("transparent ports: ports 80, 443");
  });

  it("explains tools, baseline, mounts and resources", () => {
    expect(x.tools).toEqual({ allow: ["send_*"], deny: ["send_bulk"], rateLimitPerMinute: 30, meaning: expect.any(String) });
    expect(text).toContain("only tools matching send_* are callable; tools matching send_bulk are refused (deny wins over allow); at most 30 tool calls per minute");
    expect(text).toContain("frozen baseline baselines/demo.json");
    expect(text).toContain("above 2x the baseline's highest");
    expect(text).toContain("mount: ./data -> /data (read-only)");
    expect(text).toContain("mount: ./out -> /out (read-write)");
    expect(text).toContain("resources: memory 512m, 1 CPUs, at most 64 processes");
    expect(text).toContain("npm package @acme/mcp, exactly version 1.2.3, not pinned by integrity");
  });

  it("names secrets and env entries but never shows a value", () => {
    expect(x.server.secrets).toEqual(["ACME_TOKEN"]);
    expect(x.server.env).toEqual(["LOG_LEVEL"]);
    expect(text).toContain("secrets: ACME_TOKEN");
    expect(text).not.toContain("very-visible-plain-value");
    expect(JSON.stringify(x)).not.toContain("very-visible-plain-value");
  });

  it("round-trips through JSON", () => {
    expect(JSON.parse(JSON.stringify(x))).toEqual(x);
  });
});

describe("explain shows names as the sidecar compares them", () => {
  it("lowercases, drops the trailing dot and converts international names to punycode", async () => {
    const result = await loadPolicyFile("test/fixtures/policies/names.yaml");
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const x = explainPolicy(result.compiled);
    expect(x.egress.hosts.map((h) => [h.rule, h.written])).toEqual([
      ["api.example.com", ["API.Example.COM."]],
      ["xn--bcher-kva.example", ["bücher.example"]],
      ["*.example.org", ["*.Example.ORG"]],
    ]);
    const text = formatExplanation(x);
    expect(text).toContain('- api.example.com on port 443: this name only, not its subdomains (written "API.Example.COM.")');
    expect(text).toContain('- xn--bcher-kva.example on port 443: this name only, not its subdomains (written "bücher.example")');
  });

  it("merges two spellings of one name into one rule", () => {
    const { x } = explain(`version: 1\nname: a\nserver: { image: { ref: x } }\negress:\n  allow:\n    - { host: API.example.com, ports: [443] }\n    - { host: api.example.com., ports: [8443] }\n`);
    expect(x.egress.hosts).toEqual([expect.objectContaining({ rule: "api.example.com", ports: [443, 8443], written: ["API.example.com", "api.example.com."] })]);
  });
});

describe("explain for the edge cases", () => {
  it("an empty allow list means no egress at all", () => {
    const { x, text } = explain(`version: 1\nname: a\nserver: { image: { ref: x } }\n`);
    expect(x.egress.summary).toBe("no egress: every outbound connection and every DNS lookup is refused");
    expect(text).toContain("every tool the server offers is callable");
    expect(text).toContain("not pinned by digest");
  });

  it("capture means quarantine, and says so", () => {
    const { x, text } = explain(`version: 1\nname: a\nserver: { build: { context: . } }\negress: { capture: { ports: [443, 8080] } }\n`);
    expect(x.egress.capture).toEqual({ enabled: true, ports: [443, 8080], meaning: expect.stringContaining("nothing leaves") });
    expect(text).toContain("capture: quarantine: every connection on ports 443, 8080 is recorded with its SNI or Host, and nothing leaves the sandbox");
    expect(text).toContain("image built locally from . with Dockerfile");
  });

  it("reports ambiguous ports and policy warnings", () => {
    const { x, text } = explain(
      `version: 1\nname: a\nserver: { image: { ref: x } }\negress:\n  allow:\n    - { host: a.test, ports: [5432] }\n    - { host: b.test, ports: [5432] }\n`,
    );
    expect(x.egress.namelessPorts).toEqual([{ port: 5432, meaning: expect.stringContaining("refused") }]);
    expect(x.warnings).toEqual([{ path: "egress.allow[0].ports", message: expect.stringContaining("port 5432 is ambiguous") }]);
    expect(text).toContain("Warnings\n  - egress.allow[0].ports: port 5432 is ambiguous");
  });
});

describe("explain: inspection and request routes", () => {
  it("says in words that TLS is terminated and which requests are allowed", () => {
    const { x, text } = explain(`
version: 1
name: mail
server: { image: { ref: "x" } }
egress:
  allow:
    - host: api.postmark.test
      ports: [443]
      inspect: true
      http:
        - { method: POST, path: /email }
        - { method: POST, path: "/email/*" }
    - host: open.test
      ports: [443]
`);
    expect(x.egress.hosts[0]).toMatchObject({ rule: "api.postmark.test", inspect: true, routes: ["POST /email", "POST /email/*"] });
    expect(x.egress.hosts[1]).toMatchObject({ rule: "open.test", inspect: false });
    expect(x.egress.hosts[1]).not.toHaveProperty("routes");
    expect(text).toContain("TLS is terminated by the sidecar with this sandbox's own CA");
    expect(text).toContain("only these requests: POST /email, POST /email/*");
  });
});
