import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadCjsWithCodeCache } from "../../src/cli/cached-cjs.js";
import { hangar } from "../cli/capture-io.js";
import { ROOT } from "./support/docker-test-env.js";

/**
 * The built CLI runs `hangar policy lint` from its CommonJS bundle with a V8 code cache
 * (src/cli/cached-cjs.ts, made by scripts/bundle-cli.ts). Here, after `npm run build` (the
 * Docker suite needs dist anyway): the cache is accepted by this node, and the bundle says
 * exactly what the module says, errors, warnings, --json and exit codes included.
 */
const run = promisify(execFile);
const BUNDLE = join(ROOT, "dist/cli/policy-lint.cjs");
const dir = mkdtempSync(join(tmpdir(), "hangar-lint-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function built(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, "dist/cli/main.js"), ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("hangar policy lint from the built bundle", () => {
  it("has its bundle and a code cache this node accepts", () => {
    expect(existsSync(BUNDLE), `${BUNDLE} is missing: run "npm run build"`).toBe(true);
    expect(loadCjsWithCodeCache(BUNDLE)?.cacheUsed).toBe(true);
  });

  it("says what the module says: shipped policies, an invalid one, warnings with --strict and --json", async () => {
    const shipped = readdirSync(join(ROOT, "policies")).filter((f) => f.endsWith(".yaml")).map((f) => join(ROOT, "policies", f));
    const invalid = join(dir, "invalid.yaml");
    writeFileSync(invalid, "version: 1\nname: Bad_Name\nserver: { image: { ref: x } }\negress:\n  allow:\n    - host: \"*.co.uk\"\n      ports: [443]\n  bogus: 1\n");
    const warned = join(dir, "warned.yaml");
    writeFileSync(warned, "version: 1\nname: warned\nserver: { image: { ref: x } }\negress:\n  allow:\n    - host: \"*.co.uk\"\n      ports: [443]\n");
    for (const args of [["policy", "lint", ...shipped], ["policy", "lint", invalid], ["policy", "lint", "--strict", warned], ["policy", "lint", "--json", warned, invalid], ["policy", "lint"]]) {
      const [fromBundle, fromModule] = await Promise.all([built(args), hangar(args)]);
      expect(fromBundle, args.join(" ")).toEqual(fromModule);
    }
  });
});
