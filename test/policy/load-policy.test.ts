import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIssue, loadPolicyFile, parsePolicyText, type PolicyIssue } from "../../src/policy/index.js";

const FIXTURES = "test/fixtures/policies";

async function issuesOf(name: string): Promise<PolicyIssue[]> {
  const result = await loadPolicyFile(`${FIXTURES}/${name}`);
  if (result.ok) throw new Error(`${name} unexpectedly loaded`);
  return [...result.issues];
}

async function onlyIssue(name: string): Promise<PolicyIssue> {
  const issues = await issuesOf(name);
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

describe("policy files that fail, one problem each", () => {
  it("a misspelt top-level key points at the key and suggests the right one", async () => {
    const issue = await onlyIssue("misspelt-key.yaml");
    expect(issue).toMatchObject({ line: 7, col: 1, path: ["egres"], code: "unrecognized_keys", severity: "error" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/misspelt-key.yaml:7:1: egres: unknown key "egres"; did you mean "egress"?`);
  });

  it("an invalid CIDR points at the value", async () => {
    const issue = await onlyIssue("invalid-cidr.yaml");
    expect(issue).toMatchObject({ line: 10, col: 13, path: ["egress", "allow", 1, "cidr"], code: "custom" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/invalid-cidr.yaml:10:13: egress.allow[1].cidr: "10.0.0.0/33" is not a valid CIDR`);
  });

  it("a port out of range points at that port inside the list", async () => {
    const issue = await onlyIssue("bad-port.yaml");
    expect(issue).toMatchObject({ line: 10, col: 20, path: ["egress", "allow", 0, "ports", 1], code: "too_big" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/bad-port.yaml:10:20: egress.allow[0].ports[1]: 70000 is not a valid port (1-65535)`);
  });

  it("a wildcard anywhere but the leftmost label is refused", async () => {
    const issue = await onlyIssue("bad-wildcard.yaml");
    expect(formatIssue(issue)).toBe(
      `${FIXTURES}/bad-wildcard.yaml:9:13: egress.allow[0].host: "api.*.com" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"`,
    );
  });

  it("an unknown mode names the valid ones", async () => {
    const issue = await onlyIssue("bad-mode.yaml");
    expect(issue).toMatchObject({ line: 8, col: 9, path: ["egress", "mode"], code: "invalid_value" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/bad-mode.yaml:8:9: egress.mode: "enforce" is not a mode; expected "enforcing" or "observing"`);
  });

  it("an allow entry with both host and cidr points at the entry", async () => {
    const issue = await onlyIssue("host-and-cidr.yaml");
    expect(formatIssue(issue)).toBe(`${FIXTURES}/host-and-cidr.yaml:9:7: egress.allow[0]: an allow entry takes either "host" or "cidr", not both`);
  });

  it("a YAML syntax error is an issue with a position, not an exception", async () => {
    const issue = await onlyIssue("yaml-syntax.yaml");
    expect(issue).toMatchObject({ line: 11, col: 3, path: [], code: "yaml_bad_indent", severity: "error" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/yaml-syntax.yaml:11:3: YAML syntax error: flow sequence in block collection must be sufficiently indented and end with a ]`);
  });

  it("a duplicate key points at the second occurrence", async () => {
    const issue = await onlyIssue("duplicate-key.yaml");
    expect(formatIssue(issue)).toBe(`${FIXTURES}/duplicate-key.yaml:9:3: egress.mode: duplicate key "mode"; keys in a mapping must be unique`);
  });

  it("a top level that is not a mapping", async () => {
    const issue = await onlyIssue("not-a-mapping.yaml");
    expect(formatIssue(issue)).toBe(`${FIXTURES}/not-a-mapping.yaml:1:1: a policy must be a mapping (key: value lines) at the top level`);
  });

  it("a missing file names the file and has no position", async () => {
    const issue = await onlyIssue("does-not-exist.yaml");
    expect(issue).toMatchObject({ line: 0, col: 0, path: [], code: "file_not_found" });
    expect(formatIssue(issue)).toBe(`${FIXTURES}/does-not-exist.yaml: no such file`);
  });

  it("a folder is not a policy file", async () => {
    const result = await loadPolicyFile(FIXTURES);
    expect(result.ok ? [] : result.issues.map(formatIssue)).toEqual([`${FIXTURES}: is a folder, not a policy file`]);
  });
});

describe("a file with several problems", () => {
  it("reports every one of them, in file order", async () => {
    const lines = (await issuesOf("several-problems.yaml")).map(formatIssue).map((l) => l.replace(`${FIXTURES}/several-problems.yaml:`, ""));
    expect(lines).toEqual([
      "1:10: version: 2 is not a supported policy version; expected 1",
      '2:7: name: "Several_Problems" is not a valid name (lowercase letters, digits and "-", at most 63)',
      '6:14: server.npm.version: "^1.0.0" is not an exact version (ranges and tags are not allowed; pin e.g. "1.2.3")',
      '8:9: egress.mode: "enforce" is not a mode; expected "enforcing" or "observing"',
      '10:13: egress.allow[0].host: "api.*.com" is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"',
      '11:13: egress.allow[1].cidr: "10.0.0.0/33" is not a valid CIDR',
      "12:15: egress.allow[1].ports[0]: 0 is not a valid port (1-65535)",
      "12:18: egress.allow[1].ports[1]: 70000 is not a valid port (1-65535)",
      '13:7: egress.allow[2]: an allow entry takes either "host" or "cidr", not both',
      '15:12: egress.capture: expected a boolean (true or false) or a mapping (key: value lines), got "sometimes"',
      // The suggestion covers the missing perMinute, so zod's second issue is not repeated.
      '17:16: tools.rateLimit.perMinut: unknown key "perMinut"; did you mean "perMinute"?',
    ]);
  });
});

describe("parsePolicyText", () => {
  const base = 'version: 1\nname: a\nserver:\n  npm: { package: a, version: "1.0.0" }\n';
  const lines = (text: string): string[] => {
    const result = parsePolicyText(text, "t.yaml");
    return (result.ok ? result.warnings : result.issues).map(formatIssue);
  };

  it("accepts a valid policy and fills the defaults", () => {
    const result = parsePolicyText(base, "t.yaml");
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.policy.egress).toEqual({ mode: "enforcing", allow: [], dns: { recordTypes: ["A"] }, capture: false });
    expect(result.compiled.name).toBe("a");
    expect(result.warnings).toEqual([]);
  });

  it("says which required keys are missing", () => {
    expect(lines("version: 1\n")).toEqual(['t.yaml:1:1: name: missing required key "name"', 't.yaml:1:1: server: missing required key "server"']);
  });

  it("an empty section says what it expected", () => {
    expect(lines(`${base}egress:\n`)).toEqual(["t.yaml:5:1: egress: expected a mapping (key: value lines), got nothing"]);
  });

  it("an empty file", () => {
    expect(lines("# just a comment\n")).toEqual(["t.yaml:1:1: the file holds no policy; it needs at least version, name and server"]);
  });

  it("suggests keys in nested mappings and lists the choices when nothing is close", () => {
    expect(lines(`${base}egress:\n  allow:\n    - host: a.com\n      port: 443\nfrobnicate: 1\n`)).toEqual([
      't.yaml:8:7: egress.allow[0].port: unknown key "port"; did you mean "ports"?',
      't.yaml:9:1: frobnicate: unknown key "frobnicate"; expected one of version, name, description, server, egress, tools, baseline',
    ]);
  });

  it("quotes record keys that are not plain words", () => {
    expect(lines(base.replace("}\n", "}\n  env: { bad-name: x }\n"))).toEqual([
      't.yaml:5:10: server.env["bad-name"]: "bad-name" is not a valid environment variable name',
    ]);
  });

  it("refuses a second YAML document", () => {
    expect(lines(`${base}---\nversion: 1\n`)).toEqual(["t.yaml:5:1: YAML syntax error: a policy file holds one YAML document; remove the second ---"]);
  });

  it("refuses an alias bomb instead of expanding it", () => {
    const bomb = ["a: &a [1,1,1,1,1,1,1,1,1,1]", "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]", "c: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]"].join("\n");
    const result = parsePolicyText(bomb, "t.yaml");
    expect(result.ok ? "" : result.issues[0]?.code).toBe("yaml_resource_exhaustion");
  });

  it("keeps explicit YAML tags such as !!binary as plain data", () => {
    // Resolved, !!binary would become a Buffer, which zod takes for an object with a hundred keys.
    expect(lines(`${base}description: !!binary aGVsbG8=\n`)).toEqual(["t.yaml:5:14: warning: YAML: unresolved tag: tag:yaml.org,2002:binary"]);
  });

  it("turns compiled-policy warnings into positioned warnings", async () => {
    const result = await loadPolicyFile(`${FIXTURES}/ambiguous-port.yaml`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map(formatIssue)).toEqual([
      `${FIXTURES}/ambiguous-port.yaml:10:14: warning: egress.allow[0].ports: port 5432 is ambiguous: several hosts (or a wildcard) declare it, so traffic on it that carries no name (no TLS SNI, no HTTP Host) cannot be routed and will be refused`,
    ]);
  });
});

describe("loadPolicyFile bounds what it reads", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-policy-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a file over the size limit without parsing it", async () => {
    const path = join(dir, "big.yaml");
    await writeFile(path, `description: "${"x".repeat(2000)}"\n`);
    const result = await loadPolicyFile(path, { maxBytes: 1000, displayName: "big.yaml" });
    expect(result.ok ? [] : result.issues.map(formatIssue)).toEqual(["big.yaml: is 2016 bytes; a policy file may be at most 1000"]);
  });

  it("refuses a device that would never end", async () => {
    const result = await loadPolicyFile("/dev/zero");
    expect(result.ok ? [] : result.issues.map(formatIssue)).toEqual(["/dev/zero: is not a regular file"]);
  });

  it("refuses a file that is not UTF-8", async () => {
    const path = join(dir, "latin1.yaml");
    await writeFile(path, Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xe9, 0x0a]));
    const result = await loadPolicyFile(path, { displayName: "latin1.yaml" });
    expect(result.ok ? [] : result.issues.map(formatIssue)).toEqual(["latin1.yaml: is not UTF-8 text"]);
  });
});
