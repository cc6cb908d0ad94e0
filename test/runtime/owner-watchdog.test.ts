import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { ProcessOwnerWatchdog, type WatchdogCommand } from "../../src/runtime/owner-watchdog.js";
import { hangarPackageRoot } from "../../src/images/package-root.js";

/**
 * The owner side of the watchdog, with a stand-in watchdog program that records what it was
 * told and when its stdin ended. The real program (owner-watchdog-main.ts) removes Docker
 * objects; test/docker/run-owner-killed.test.ts runs it against real sandboxes.
 */

const ROOT = hangarPackageRoot();
let dir: string;

/** Writes {target, lines, pid} to the file named by its first argument once stdin ends. */
const RECORDER = `
const [out, target] = process.argv.slice(1);
let input = "";
process.stdin.setEncoding("utf8").on("data", (c) => (input += c)).on("end", () => {
  require("node:fs").writeFileSync(out, JSON.stringify({ target: JSON.parse(target), lines: input.split("\\n").filter(Boolean), pid: process.pid }));
});
`;

const recorder = (out: string): WatchdogCommand => ({ command: process.execPath, args: ["-e", RECORDER, out], cwd: ROOT });

async function recorded(out: string, timeoutMs = 10_000): Promise<{ target: unknown; lines: string[]; pid: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(out, "utf8").catch(() => undefined);
    if (text !== undefined) return JSON.parse(text) as { target: unknown; lines: string[]; pid: number };
    if (Date.now() > deadline) throw new Error(`the watchdog saw no EOF within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A separate owner process (in its own process group) that starts a watchdog, says "ready", and lives on unless told to end. */
function owner(out: string, options: { stayAlive: boolean }): { ready: Promise<void>; exited: Promise<number | null>; pid: number } {
  const module = pathToFileURL(join(ROOT, "src/runtime/owner-watchdog.ts")).href;
  const script = `
    import { ProcessOwnerWatchdog } from ${JSON.stringify(module)};
    const logger = { warn: () => undefined, debug: () => undefined };
    const watch = new ProcessOwnerWatchdog(logger, ${JSON.stringify(recorder(out))}).watch({ server: "s", run: "r1" });
    watch.alsoRemove("/tmp/hangar/s-r1-abc");
    console.log("ready");
    ${options.stayAlive ? "setInterval(() => undefined, 1000);" : ""}
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "inherit"] });
  const ready = new Promise<void>((resolve) => child.stdout.on("data", (c: Buffer) => c.toString().includes("ready") && resolve()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { ready, exited, pid: child.pid! };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-watchdog-test-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ProcessOwnerWatchdog", () => {
  it("gives the watchdog its target and the folders to remove; release() ends its stdin", async () => {
    const out = join(dir, "released.json");
    const watch = new ProcessOwnerWatchdog(silentLogger(), recorder(out)).watch({ server: "memory", run: "a1b2c3d4" });
    watch.alsoRemove("/tmp/hangar/memory-a1b2c3d4-xyz");
    watch.release();
    watch.release();
    expect(await recorded(out)).toMatchObject({ target: { server: "memory", run: "a1b2c3d4" }, lines: ['{"remove":"/tmp/hangar/memory-a1b2c3d4-xyz"}'] });
  });

  it("the watchdog sees EOF when its owner's whole process group is SIGKILLed, and outlives it", async () => {
    const out = join(dir, "killed.json");
    const o = owner(out, { stayAlive: true });
    await o.ready;
    process.kill(-o.pid, "SIGKILL");
    await o.exited;
    const seen = await recorded(out);
    expect(seen).toMatchObject({ target: { server: "s", run: "r1" }, lines: ['{"remove":"/tmp/hangar/s-r1-abc"}'] });
    expect(seen.pid).not.toBe(o.pid);
  });

  it("does not keep its owner alive: an owner with nothing left to do exits, and the watchdog sees EOF", async () => {
    const out = join(dir, "exited.json");
    const o = owner(out, { stayAlive: false });
    await o.ready;
    expect(await o.exited).toBe(0);
    expect((await recorded(out)).lines).toEqual(['{"remove":"/tmp/hangar/s-r1-abc"}']);
  });
});
