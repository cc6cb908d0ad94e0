import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GATE_CLOSED_EXIT, GATE_MOUNT_FILE, GATE_SOURCE, gatedCommand } from "../../src/runtime/start-gate.js";

/** The gate preloaded into a real node, as in the server container: what runs, and when. */
const dir = mkdtempSync(join(tmpdir(), "hangar-gate-"));
const gate = join(dir, "start-gate.cjs");
writeFileSync(gate, GATE_SOURCE);
// The "server": says it runs, then echoes the first stdin line it reads itself.
const server = join(dir, "server.mjs");
writeFileSync(server, 'import readline from "node:readline";\nprocess.stdout.write("ran\\n");\nreadline.createInterface({ input: process.stdin }).once("line", (l) => { process.stdout.write(`read ${l}\\n`); process.exit(0); });\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gated(): { out: () => string; write: (s: string) => void; end: () => void; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["--require", gate, server], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  return { out: () => out, write: (s) => child.stdin.write(s), end: () => child.stdin.end(), exit: new Promise((r) => child.on("exit", (code) => r(code))) };
}

describe("the start gate", () => {
  it("runs nothing of the server before its line, then the server reads what follows the line", async () => {
    const p = gated();
    await new Promise((r) => setTimeout(r, 400));
    expect(p.out()).toBe("");
    p.write('\n{"jsonrpc":"2.0","id":1}\n');
    expect(await p.exit).toBe(0);
    expect(p.out()).toBe('ran\nread {"jsonrpc":"2.0","id":1}\n');
  });

  it("ends the process without running the server when stdin closes first", async () => {
    const p = gated();
    p.write("no newline yet");
    p.end();
    expect(await p.exit).toBe(GATE_CLOSED_EXIT);
    expect(p.out()).toBe("");
  });

  it("gates only commands that start node", () => {
    expect(gatedCommand(["node", "/app/index.js", "stdio"])).toEqual(["node", "--require", GATE_MOUNT_FILE, "/app/index.js", "stdio"]);
    expect(gatedCommand(["/usr/local/bin/node", "x.js"])).toEqual(["/usr/local/bin/node", "--require", GATE_MOUNT_FILE, "x.js"]);
    expect(gatedCommand(["python3", "server.py"])).toBeUndefined();
    expect(gatedCommand(undefined)).toBeUndefined();
    expect(gatedCommand([])).toBeUndefined();
  });
});
