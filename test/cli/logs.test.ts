import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogsCommand } from "../../src/cli/commands/logs.js";
import { ServerLogStore } from "../../src/runtime/server-log-store.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function stateWith(runs: Array<[string, string, string[]]>): Promise<string> {
  const state = mkdtempSync(join(tmpdir(), "hangar-state-"));
  dirs.push(state);
  const store = new ServerLogStore({ dir: join(state, "logs") });
  for (const [server, run, lines] of runs) {
    const w = await store.open(server, run);
    for (const line of lines) w.write(line);
    w.close();
    await new Promise((r) => setTimeout(r, 5));
  }
  return state;
}

/** memory's run m2 still runs; m1 has ended. */
const engine = () => listingEngine([sandbox("memory", "m2")]);
const logs = (argv: string[], state: string, e = engine()) => hangar(["logs", ...argv], { env: { HANGAR_STATE_DIR: state }, commands: [createLogsCommand({ openContext: e.open, pollMs: 10 })] });

describe("hangar logs", () => {
  it("shows the newest run of a server, says so when there are several, and --json tells running from ended", async () => {
    const state = await stateWith([["memory", "m1", ["old run"]], ["memory", "m2", ["booting", "ready"]]]);
    const byName = await logs(["memory"], state);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toBe("booting\nready\n");
    expect(byName.stderr).toContain("memory has logs of 2 runs; showing the newest (run m2)");
    const ended = await logs(["m1", "--json"], state);
    expect(JSON.parse(ended.stdout)).toMatchObject({ server: "memory", run: "m1", running: false, rotated: false, lines: ["old run"] });
    const running = await logs(["memory", "--run", "m2", "--json"], state);
    expect(JSON.parse(running.stdout)).toMatchObject({ run: "m2", running: true, lines: ["booting", "ready"] });
  });

  it("an unknown name exits 1 with a suggestion; an unknown run of a known server too", async () => {
    const state = await stateWith([["memory", "m1", ["x"]]]);
    const typo = await logs(["memroy"], state);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/no logs of "memroy" in .*; did you mean "memory"\?/);
    const run = await logs(["memory", "--run", "m9"], state);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('memory has no run "m9" with logs; did you mean m1?');
    const emptyState = mkdtempSync(join(tmpdir(), "hangar-empty-"));
    dirs.push(emptyState);
    const empty = await logs(["memory"], emptyState);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/no server logs in .*hangar run keeps each server's stderr there/);
  });

  it("--follow prints lines as they come and ends when the sandbox has ended", async () => {
    const state = await stateWith([["echo", "e1", ["start"]]]);
    const store = new ServerLogStore({ dir: join(state, "logs") });
    const writer = await store.open("echo", "e1");
    let alive = true;
    const e = listingEngine([]);
    // A sandbox that runs until `alive` turns false.
    const running = { ...e, open: async () => ({ engine: { listContainers: async () => (alive ? [{ running: true }] : []) } }) } as unknown as typeof e;
    const followed = hangar(["logs", "echo", "--follow", "--json"], { env: { HANGAR_STATE_DIR: state }, commands: [createLogsCommand({ openContext: running.open, pollMs: 10 })] });
    await new Promise((r) => setTimeout(r, 50));
    writer.write("later line");
    await new Promise((r) => setTimeout(r, 50));
    writer.write("last line");
    alive = false;
    writer.close();
    const result = await followed;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { line: string }).line)).toEqual(["start", "later line", "last line"]);
  });

  it("with a Hangar configuration, also finds the logs `hangar serve` keeps under its gateway.stateDir", async () => {
    const runState = await stateWith([["memory", "m1", ["from hangar run"]]]);
    const configDir = mkdtempSync(join(tmpdir(), "hangar-config-"));
    dirs.push(configDir);
    writeFileSync(join(configDir, "hangar.yaml"), "version: 1\nservers: [github.yaml]\ngateway:\n  stateDir: served\n");
    const served = new ServerLogStore({ dir: join(configDir, "served", "logs") });
    const w = await served.open("github", "g1");
    w.write("served line");
    w.close();
    const result = await logs(["github", "--config", join(configDir, "hangar.yaml")], runState);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("served line\n");
    // hangar run's own logs are still found beside them.
    expect((await logs(["memory", "--config", join(configDir, "hangar.yaml")], runState)).stdout).toBe("from hangar run\n");
    // Without the configuration, serve's logs are not where the verb looks.
    expect((await logs(["github"], runState)).code).toBe(1);
  });
});
