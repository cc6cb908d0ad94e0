import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerTestEnv, ROOT } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, hangarCliCommand, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * `hangar logs` through the real CLI, against a real `hangar run` of policies/everything.yaml
 * (whose server says "Starting default (STDIO) server..." on stderr): while the sandbox runs,
 * following it until it ends, and after it has ended, from the run's own state directory.
 */

const STDERR_LINE = "Starting default (STDIO) server...";
const execute = promisify(execFile);

let env: DockerTestEnv;
let config: string;
let stateDir: string;
const sessions: HangarRunSession[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const sidecarImage = await ensureCliSidecarImage(env.engine);
  const egress = await env.egressNetwork();
  config = await writeRunConfig(join(await env.stateRoot(), "hangar.yaml"), { egress, sidecarImage });
  stateDir = join(await env.stateRoot(), "state");
}, 600_000);

afterAll(async () => {
  for (const session of sessions) await session[Symbol.asyncDispose]();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

async function logs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = hangarCliCommand();
  try {
    const { stdout, stderr } = await execute(cli.command, [...cli.args, "logs", ...args], { cwd: ROOT, env: { ...process.env, HANGAR_STATE_DIR: stateDir } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `hangar logs --follow`, running in the background until it exits by itself. */
function followLogs(args: string[]): { exited: Promise<{ code: number | null; stdout: string }> } {
  const cli = hangarCliCommand();
  const child = spawn(cli.command, [...cli.args, "logs", ...args, "--follow"], { cwd: ROOT, env: { ...process.env, HANGAR_STATE_DIR: stateDir }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.resume();
  return { exited: new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout }))) };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("hangar logs", () => {
  it("shows the server's stderr while the sandbox runs, follows it to its end, and still after it has ended", async () => {
    const session = await HangarRunSession.start({ engine: env.engine, policy: join(ROOT, "policies/everything.yaml"), config, env: { HANGAR_STATE_DIR: stateDir, HANGAR_VERBOSE: "1" } });
    sessions.push(session);
    const box = await session.sandbox();
    // --verbose (here HANGAR_VERBOSE) says where the start's time went, every phase with its ms.
    const phases = session.stderrLines.find((l) => l.startsWith("hangar: start phases: "));
    const names = [...(phases ?? "").matchAll(/(\S+) (\d+) ms/g)].map((m) => m[1]);
    // (Steps run side by side are listed as they end: compared as a set.)
    // sidecar-limit: the sidecar's CPU quota set once it serves (runtime.startCpuBoostMs).
    expect(names.sort()).toEqual(["cli", "policy", "docker", "images", "checks", "reap+egress", "network", "server-create", "sidecar", "sidecar-limit", "server-start", "sandbox"].sort());
    const logFile = join(stateDir, "logs", box.server, `${box.run}.log`);
    await waitFor("the server's first stderr line in its log", async () => (await readFile(logFile, "utf8").catch(() => "")).includes(STDERR_LINE));
    // What the CLI printed as [everything] lines is what was kept.
    const printed = session.stderrLines.filter((l) => l.startsWith(`[${box.server}] `)).map((l) => l.slice(box.server.length + 3));
    expect(printed).toContain(STDERR_LINE);

    const running = await logs([box.server, "--json"]);
    expect(running.code, running.stderr).toBe(0);
    const live = JSON.parse(running.stdout) as { server: string; run: string; running: boolean; lines: string[] };
    expect(live).toMatchObject({ server: box.server, run: box.run, running: true });
    expect(live.lines).toContain(STDERR_LINE);
    expect(printed.slice(0, live.lines.length)).toEqual(live.lines);

    // Following by run id: it prints what is there, and ends by itself once the sandbox is gone.
    const follower = followLogs([box.run]);
    const closed = await session.closeStdinAndTime();
    expect(closed.exit).toEqual({ code: 0, signal: null });
    const followed = await Promise.race([follower.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("logs --follow did not end within 10 s of the sandbox")), 10_000))]);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain(`${STDERR_LINE}\n`);

    const ended = await logs([box.server, "--json"]);
    expect(ended.code, ended.stderr).toBe(0);
    expect(JSON.parse(ended.stdout)).toMatchObject({ server: box.server, run: box.run, running: false, lines: live.lines.length > 0 ? expect.arrayContaining(live.lines) : [] });
    const plain = await logs([box.run]);
    expect(plain.stdout).toContain(`${STDERR_LINE}\n`);

    const typo = await logs(["everthing"]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/no logs of "everthing" in .*; did you mean "everything"\?/);
  }, 240_000);
});
