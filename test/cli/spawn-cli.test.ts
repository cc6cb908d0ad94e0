import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

/** The real entry point in a child process: proves the exit codes come from the process itself. */
async function spawnHangar(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { env: { ...process.env, HANGAR_DEBUG: "" } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("the hangar process", () => {
  it("exits 0 for clean policies, 1 for an invalid one, 2 for a usage error", async () => {
    const [clean, invalid, usage] = await Promise.all([
      spawnHangar(["policy", "lint", "policies/everything.yaml", "policies/quarantine.yaml"]),
      spawnHangar(["policy", "lint", "test/fixtures/policies/invalid-cidr.yaml"]),
      spawnHangar(["policy", "lint", "--nope"]),
    ]);
    expect(clean).toMatchObject({ code: 0, stdout: "" });
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toBe('test/fixtures/policies/invalid-cidr.yaml:10:13: egress.allow[1].cidr: "10.0.0.0/33" is not a valid CIDR\n');
    expect(usage.code).toBe(2);
    expect(usage.stderr.split("\n")[0]).toBe("hangar: unknown option --nope");
    expect(usage.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});

describe("hangar run", () => {
  it("names a missing secret before any engine or image work (none reachable here), exit 2", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HANGAR_DEBUG: "", DOCKER_HOST: "unix:///nonexistent/docker.sock" };
    delete env["POSTMARK_TOKEN"];
    const r = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "run", "policies/postmark.yaml"], { env }).then(
      (o) => ({ code: 0, ...o }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('hangar: policies/postmark.yaml: server.secrets: "POSTMARK_TOKEN" is not set in the environment; nothing was started\n');
  });
});

describe("hangar run with a relative policy path that is not there", () => {
  it("says which folder it looked in, exit 1", async () => {
    const r = await run(process.execPath, ["--import", `${process.cwd()}/node_modules/tsx/dist/loader.mjs`, `${process.cwd()}/src/cli/main.ts`, "run", "policies/nope.yaml"], { cwd: "/", env: { ...process.env, HANGAR_DEBUG: "" } }).then(
      (o) => ({ code: 0, ...o }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("policies/nope.yaml: no such file");
    expect(r.stderr).toContain("hangar: policies/nope.yaml was looked for relative to /; give an absolute path when the caller's folder differs");
  });
});
