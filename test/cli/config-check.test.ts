import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hangar } from "./capture-io.js";

const root = mkdtempSync(join(tmpdir(), "hangar-config-check-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const everything = readFileSync("policies/everything.yaml", "utf8");

function project(name: string, config: string, policies: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(join(dir, "policies"), { recursive: true });
  for (const [file, text] of Object.entries(policies)) writeFileSync(join(dir, "policies", file), text);
  writeFileSync(join(dir, "hangar.yaml"), config);
  return join(dir, "hangar.yaml");
}

const BROKEN_CONFIG = [
  "servers:", //                                   1
  "  - policies/a.yaml", //                         2
  "  - policies/b.yaml", //                         3
  "  - policies/missing.yaml", //                   4
  "identity: not valid!", //                        5
  "rbac:", //                                       6
  "  roles: { reader: { allow: ['*__read'] } }", // 7
  "  bindings: { alice: [writer] }", //             8
  "gateway:", //                                    9
  "  callTimeoutMs: soon", //                      10
  "  stateDirr: x", //                             11
  "",
].join("\n");

describe("hangar config check", () => {
  it("reports every problem of hangar.yaml and of each policy it names in one pass, with file:line:col", async () => {
    const config = project("broken", BROKEN_CONFIG, {
      "a.yaml": everything.replace(/^name: everything$/m, "name: alpha\nbogusKey: 1"),
      "b.yaml": everything.replace(/^name: everything$/m, "name: Not A Name"),
    });
    const run = await hangar(["config", "check", "--config", config]);
    expect(run.code).toBe(1);
    const lines = run.stdout.trimEnd().split("\n");
    const dir = join(root, "broken");
    // hangar.yaml's own problems: the missing policy, the identity, the unknown role, the bad number, the typo.
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${config}:4:5: servers\\[2\\]: policies/missing\\.yaml: no such file`)),
        expect.stringMatching(new RegExp(`^${config}:5:11: identity.*not a valid identity`)),
        expect.stringMatching(new RegExp(`^${config}:8:\\d+: .*"writer" is not defined`)),
        expect.stringMatching(new RegExp(`^${config}:10:18: .*callTimeoutMs`)),
        expect.stringMatching(new RegExp(`^${config}:11:3: .*stateDirr`)),
        expect.stringMatching(new RegExp(`^${join(dir, "policies", "a.yaml")}:\\d+:\\d+: .*bogusKey`)),
        expect.stringMatching(new RegExp(`^${join(dir, "policies", "b.yaml")}:\\d+:\\d+: name`)),
      ]),
    );
    expect(run.stderr).toMatch(/\d+ errors/);

    const json = await hangar(["config", "check", "--json"], { env: { HANGAR_CONFIG: config } });
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; errors: number; files: { file: string; issues: unknown[] }[] };
    expect(report.ok).toBe(false);
    expect(report.errors).toBe(lines.filter((l) => !l.includes(": warning: ")).length);
    expect(report.files.map((f) => f.file)).toEqual(expect.arrayContaining([config, join(dir, "policies", "a.yaml"), join(dir, "policies", "b.yaml")]));
  });

  it("serve runs the same check first and reports the same problems, all at once", async () => {
    const config = project("serve", BROKEN_CONFIG, {
      "a.yaml": everything.replace(/^name: everything$/m, "name: alpha\nbogusKey: 1"),
      "b.yaml": everything.replace(/^name: everything$/m, "name: Not A Name"),
    });
    const check = await hangar(["config", "check", "--config", config]);
    const serve = await hangar(["serve", "--config", config]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toBe(check.stdout);
  });

  it("passes a sound configuration, exit 0, naming its servers", async () => {
    const config = project("sound", "servers: [policies/a.yaml]\n", { "a.yaml": everything });
    const run = await hangar(["config", "check", "--config", config]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stderr).toContain("1 server: no errors");
    const json = await hangar(["config", "check", "--config", config, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, errors: 0, files: [{ file: config }, { file: join(root, "sound", "policies", "a.yaml") }] });
  });

  it("reports YAML syntax errors with their position", async () => {
    const config = project("syntax", "servers: [a.yaml\nidentity: x\n", {});
    const run = await hangar(["config", "check", "--config", config]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`^${config}:\\d+:\\d+: `, "m"));
  });
});
