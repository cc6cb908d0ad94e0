import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hangar } from "../cli/capture-io.js";
import { project, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

const RBAC = { roles: { reader: { allow: ["fx__*"] } }, bindings: { alice: ["reader"] } };
const tokensFile = (): string => join(p.dir, ".hangar/tokens.json");
const storedIdentities = (): string[] => (JSON.parse(readFileSync(tokensFile(), "utf8")) as { tokens: { identity: string }[] }).tokens.map((t) => t.identity);

describe("hangar token create", () => {
  it("refuses an identity with no role, naming it and the config file, and stores nothing", async () => {
    p.writeConfig({ servers: ["policies/fx.yaml"], rbac: RBAC });
    const run = await hangar(["token", "create", "--identity", "bob", "--config", p.config]);
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: `hangar: identity "bob" has no role in ${p.config}, so every call with its token would be refused; bind it a role under rbac.bindings, or pass --force to create the token anyway\n`,
    });
    expect(() => readFileSync(tokensFile())).toThrow(/ENOENT/);
  });

  it("creates it with --force, with a warning", async () => {
    p.writeConfig({ servers: ["policies/fx.yaml"], rbac: RBAC });
    const run = await hangar(["token", "create", "--identity", "bob", "--force", "--config", p.config]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\S{20,}\n$/);
    expect(run.stderr).toMatch(/^hangar: warning: identity "bob" has no role in .*; creating it anyway \(--force\)\n/);
    expect(storedIdentities()).toEqual(["bob"]);
  });

  it("creates it without a word for an identity with a role, one bound through \"*\", or when there is no RBAC", async () => {
    p.writeConfig({ servers: ["policies/fx.yaml"], rbac: RBAC });
    expect(await hangar(["token", "create", "--identity", "alice", "--config", p.config])).toMatchObject({ code: 0, stderr: expect.stringMatching(/^tok-\S+: token for alice; /) });
    p.writeConfig({ servers: ["policies/fx.yaml"], rbac: { ...RBAC, bindings: { "*": ["reader"] } } });
    expect(await hangar(["token", "create", "--identity", "bob", "--config", p.config])).toMatchObject({ code: 0 });
    p.writeConfig({ servers: ["policies/fx.yaml"] });
    expect(await hangar(["token", "create", "--identity", "carol", "--config", p.config])).toMatchObject({ code: 0 });
    expect(storedIdentities()).toEqual(["alice", "bob", "carol"]);
  });
});
