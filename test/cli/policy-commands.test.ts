import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { policySchemaText } from "../../src/policy/index.js";
import { hangar } from "./capture-io.js";

const FIXTURES = "test/fixtures/policies";

async function examplePolicies(): Promise<string[]> {
  return (await readdir("policies")).filter((f) => f.endsWith(".yaml")).sort().map((f) => `policies/${f}`);
}

describe("hangar policy lint", () => {
  let dir: string;
  let wide: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-lint-"));
    wide = join(dir, "wide.yaml");
    await writeFile(wide, 'version: 1\nname: wide\nserver:\n  npm: { package: a, version: "1.0.0" }\negress:\n  allow:\n    - host: "*.co.uk"\n    - cidr: 0.0.0.0/0\n      ports: [443]\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes every example policy in policies/, without a warning even under --strict", async () => {
    const files = await examplePolicies();
    expect(files).toEqual(["policies/everything.yaml", "policies/filesystem.yaml", "policies/github.yaml", "policies/postmark.yaml", "policies/quarantine.yaml"]);
    const run = await hangar(["policy", "lint", "--strict", ...files]);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe("5 files checked: no errors\n");
    expect(run.code).toBe(0);
  });

  it("prints every issue of every file and exits 1 if any file has an error", async () => {
    const run = await hangar(["policy", "lint", "policies/everything.yaml", `${FIXTURES}/invalid-cidr.yaml`, `${FIXTURES}/bad-port.yaml`, `${FIXTURES}/missing.yaml`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      [
        `${FIXTURES}/invalid-cidr.yaml:10:13: egress.allow[1].cidr: "10.0.0.0/33" is not a valid CIDR`,
        `${FIXTURES}/bad-port.yaml:10:20: egress.allow[0].ports[1]: 70000 is not a valid port (1-65535)`,
        `${FIXTURES}/missing.yaml: no such file`,
        "",
      ].join("\n"),
    );
    expect(run.stderr).toBe("4 files checked: 3 errors in 3 files\n");
  });

  it("does not fail on warnings", async () => {
    const run = await hangar(["policy", "lint", `${FIXTURES}/ambiguous-port.yaml`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${FIXTURES}/ambiguous-port.yaml:10:14: warning: egress.allow[0].ports: port 5432 is ambiguous`);
    expect(run.stderr).toBe("1 file checked: no errors, 1 warning\n");
  });

  it("warns on a wildcard over a public suffix and a CIDR over local addresses, and --strict makes warnings fail", async () => {
    const run = await hangar(["policy", "lint", wide]);
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n").map((line) => line.split(": ").slice(0, 3).join(": "))).toEqual([
      `${wide}:7:13: warning: egress.allow[0].host`,
      `${wide}:8:13: warning: egress.allow[1].cidr`,
      "",
    ]);
    expect(run.stdout).toContain('*.co.uk is a wildcard directly over "co.uk", a public suffix (Public Suffix List)');
    expect(run.stdout).toContain("0.0.0.0/0 includes loopback (127.0.0.0/8), link-local (169.254.0.0/16), cloud metadata (169.254.169.254");
    expect(run.stderr).toBe("1 file checked: no errors, 2 warnings\n");

    const strict = await hangar(["policy", "lint", "--strict", wide, "policies/github.yaml"]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toBe(run.stdout);
    expect(strict.stderr).toBe("2 files checked: no errors, 2 warnings (--strict: warnings fail)\n");

    const json = await hangar(["policy", "lint", "--json", wide]);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { ok: boolean; warnings: number; files: { ok: boolean; issues: { severity: string; code: string; line: number; col: number; pathText: string }[] }[] };
    expect(doc).toMatchObject({ ok: true, errors: 0, warnings: 2 });
    expect(doc.files[0]?.issues.map((i) => [i.severity, i.code, i.line, i.col, i.pathText])).toEqual([
      ["warning", "wildcard_over_public_suffix", 7, 13, "egress.allow[0].host"],
      ["warning", "cidr_covers_local_addresses", 8, 13, "egress.allow[1].cidr"],
    ]);

    const strictJson = await hangar(["policy", "lint", "--json", "--strict", wide, "policies/github.yaml"]);
    expect(strictJson.code).toBe(1);
    expect(JSON.parse(strictJson.stdout)).toMatchObject({ ok: false, errors: 0, warnings: 2, strict: true, files: [{ ok: false }, { ok: true }] });
  });

  it("--json prints one parseable document", async () => {
    const run = await hangar(["policy", "lint", "--json", `${FIXTURES}/misspelt-key.yaml`, "policies/github.yaml"]);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout) as { ok: boolean; errors: number; files: { file: string; ok: boolean; issues: { line: number; col: number; path: unknown[]; pathText: string; message: string }[] }[] };
    expect(doc.ok).toBe(false);
    expect(doc.errors).toBe(1);
    expect(doc.files.map((f) => [f.file, f.ok])).toEqual([
      [`${FIXTURES}/misspelt-key.yaml`, false],
      ["policies/github.yaml", true],
    ]);
    expect(doc.files[0]?.issues[0]).toMatchObject({ line: 7, col: 1, path: ["egres"], pathText: "egres", message: 'unknown key "egres"; did you mean "egress"?' });
  });

  it("needs at least one file", async () => {
    const run = await hangar(["policy", "lint"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe("hangar: missing argument\nUsage: hangar policy lint <file...> [--json] [--strict]\nRun 'hangar policy lint --help' for more.\n");
  });
});

describe("hangar policy explain", () => {
  it("explains an example policy in words", async () => {
    const run = await hangar(["policy", "explain", "policies/postmark.yaml"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("- api.postmarkapp.com on port 443: this name only, not its subdomains");
    expect(run.stdout).toContain("secrets: POSTMARK_TOKEN");
    expect(run.stdout).toContain("only tools matching send_* are callable; at most 30 tool calls per minute");
  });

  it("--json parses and carries the structured rules", async () => {
    const run = await hangar(["policy", "explain", "--json", "policies/everything.yaml"]);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { ok: boolean; explanation: { egress: { hosts: { rule: string; ports: number[] }[] } } };
    expect(doc.ok).toBe(true);
    expect(doc.explanation.egress.hosts).toEqual([expect.objectContaining({ rule: "api.allowed.test", ports: [80, 443] })]);
  });

  it("shows normalised names", async () => {
    const run = await hangar(["policy", "explain", `${FIXTURES}/names.yaml`]);
    expect(run.stdout).toContain('- api.example.com on port 443: this name only, not its subdomains (written "API.Example.COM.")');
    expect(run.stdout).toContain('- xn--bcher-kva.example on port 443: this name only, not its subdomains (written "bücher.example")');
  });

  it("prints the issues of an invalid policy and exits 1", async () => {
    const run = await hangar(["policy", "explain", `${FIXTURES}/bad-mode.yaml`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`${FIXTURES}/bad-mode.yaml:8:9: egress.mode: "enforce" is not a mode; expected "enforcing" or "observing"\n`);
    const json = await hangar(["policy", "explain", "--json", `${FIXTURES}/bad-mode.yaml`]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, errors: 1 });
  });

  it("takes exactly one file", async () => {
    const run = await hangar(["policy", "explain", "a.yaml", "b.yaml"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('hangar: unexpected argument "b.yaml"');
  });
});

describe("hangar policy schema", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-schema-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("policies/schema.json is up to date (regenerate with: npm run schema)", async () => {
    expect(await readFile("policies/schema.json", "utf8")).toBe(policySchemaText());
    expect((await hangar(["policy", "schema", "--check", "policies/schema.json"])).code).toBe(0);
  });

  it("prints pretty JSON with a trailing newline", async () => {
    const run = await hangar(["policy", "schema"]);
    expect(run.code).toBe(0);
    expect(run.stdout.endsWith("}\n")).toBe(true);
    expect(JSON.parse(run.stdout)).toMatchObject({ title: "Hangar policy file, version 1", type: "object" });
  });

  it("--out writes the file, and --check notices when it goes stale", async () => {
    const out = join(dir, "schema.json");
    expect((await hangar(["policy", "schema", "--out", out])).code).toBe(0);
    expect(await readFile(out, "utf8")).toBe(policySchemaText());
    await writeFile(out, "{}\n");
    const stale = await hangar(["policy", "schema", "--check", out]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toBe(`${out}: out of date; regenerate it with: hangar policy schema --out ${out}\n`);
  });

  it("a write failure is one line and exit 2", async () => {
    const run = await hangar(["policy", "schema", "--out", join(dir, "no", "such", "dir.json")]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^hangar: ENOENT: no such file or directory, open '.*dir\.json' \(set HANGAR_DEBUG=1 for details\)\n$/);
  });
});
