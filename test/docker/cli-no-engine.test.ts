import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support/docker-test-env.js";

const run = promisify(execFile);

/** The real entry point in a child process, pointed at an engine that is not there. */
async function spawnHangar(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT, env: { ...process.env, HANGAR_DEBUG: "", ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

const NO_ENGINE = { DOCKER_HOST: "unix:///nonexistent/hangar-test/docker.sock" };

describe("without a Docker engine", () => {
  it("every Docker verb says so in one line, with how to start one, and exits 2", async () => {
    const results = await Promise.all(
      [["ps"], ["stop", "everything"], ["prune"], ["events", "everything"], ["image", "build", "policies/everything.yaml"]].map((args) => spawnHangar(args, NO_ENGINE)),
    );
    for (const result of results) {
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^hangar: no Docker engine is running at unix:\/\/\/nonexistent\/hangar-test\/docker\.sock \(ENOENT\)\. Start one: .*systemctl start docker.*dockerd.*DOCKER_HOST/);
    }
  });

  it("still reports an invalid policy first, as formatted issues with exit 1", async () => {
    const result = await spawnHangar(["image", "build", "test/fixtures/policies/invalid-cidr.yaml"], NO_ENGINE);
    expect(result).toMatchObject({ code: 1, stdout: "", stderr: 'test/fixtures/policies/invalid-cidr.yaml:10:13: egress.allow[1].cidr: "10.0.0.0/33" is not a valid CIDR\n' });
  });
});
