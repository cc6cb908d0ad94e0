import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ServerLogStore } from "../../src/runtime/server-log-store.js";

const dirs: string[] = [];
function store(options: { maxBytes?: number; maxRuns?: number } = {}): ServerLogStore {
  const dir = mkdtempSync(join(tmpdir(), "hangar-logs-"));
  dirs.push(dir);
  return new ServerLogStore({ dir, ...options });
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("ServerLogStore", () => {
  it("keeps a run's lines in order, listed newest first, readable after the writer closed", async () => {
    const s = store();
    const a = await s.open("mail", "aa11");
    a.write("first");
    a.write("second");
    a.close();
    const b = await s.open("mail", "bb22");
    b.write("other run");
    b.close();
    utimesSync(join(s.dir, "mail", "aa11.log"), new Date(1_000_000), new Date(1_000_000));
    const entries = await s.list();
    expect(entries.map((e) => e.run)).toEqual(["bb22", "aa11"]);
    expect(await s.read(entries[1]!)).toBe("first\nsecond\n");
    expect(statSync(entries[1]!.file).mode & 0o777).toBe(0o600);
  });

  it("is bounded: a run keeps at most two files of maxBytes, the newest lines last; an overlong line is cut", async () => {
    const s = store({ maxBytes: 1024 });
    const w = await s.open("echo", "cc33");
    for (let i = 0; i < 500; i++) w.write(`line ${String(i).padStart(4, "0")} ${"x".repeat(20)}`);
    w.write("y".repeat(5000));
    w.close();
    const [entry] = await s.list();
    expect(entry!.rotated).toBe(true);
    expect(entry!.bytes).toBeLessThanOrEqual(2 * 1024);
    const text = await s.read(entry!);
    const lines = text.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("y".repeat(1023));
    // What is kept is the tail, in order, with no line lost between the two files.
    const numbers = lines.slice(0, -1).map((l) => Number(/^line (\d+)/.exec(l)?.[1]));
    expect(numbers.at(-1)).toBe(499);
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    expect(readFileSync(`${entry!.file}.1`, "utf8").length).toBeLessThanOrEqual(1024);
  });

  it("keeps at most maxRuns runs: opening one removes the oldest", async () => {
    const s = store({ maxRuns: 2 });
    for (const [i, run] of ["r1", "r2", "r3"].entries()) {
      const w = await s.open("srv", run);
      w.write(run);
      w.close();
      utimesSync(join(s.dir, "srv", `${run}.log`), new Date(1_000_000 + i * 1000), new Date(1_000_000 + i * 1000));
    }
    expect((await s.list()).map((e) => e.run)).toEqual(["r3", "r2"]);
  });

  it("refuses names that are not a server name and run id (no path outside the store)", async () => {
    const s = store();
    await expect(s.open("../etc", "r1")).rejects.toThrow(/is not a server name and run id/);
    await expect(s.open("mail", "../../x")).rejects.toThrow(/is not a server name and run id/);
  });
});
