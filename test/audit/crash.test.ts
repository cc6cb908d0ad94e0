import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore, createSigningKeys, loadPublicKey, loadSigner, readAnchorFile, verifyAuditLog } from "../../src/audit/index.js";
import { tempDir, toolCall } from "./support.js";

/**
 * Crash safety: a writer killed with SIGKILL at a random moment leaves a log that verifies,
 * with its anchor, and that a new writer continues without a break. A record is either
 * wholly in (linked) or not in at all; a checkpoint is never ahead of the records it signs.
 */
const CHILD = join(import.meta.dirname, "fixtures", "append-forever.ts");

let temp: ReturnType<typeof tempDir>;
beforeEach(() => (temp = tempDir()));
afterEach(() => temp[Symbol.dispose]());

async function runAndKill(args: string[], afterReadyMs: number): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, afterReadyMs));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
}

describe("a writer killed mid-append", () => {
  for (const mode of ["single", "batch"] as const) {
    it(`leaves a verifiable log (${mode} appends)`, async () => {
      const keys = createSigningKeys(temp.dir);
      const publicKey = loadPublicKey(keys.paths.publicKey);
      const db = join(temp.dir, "audit.db");
      const anchor = join(temp.dir, "audit.anchor.json");
      let previous = 0;
      let runs = 0;
      for (const delay of [150, 40, 260]) {
        runs++;
        await runAndKill([db, keys.paths.privateKey, anchor, mode], delay);
        const report = verifyAuditLog(db, { publicKey, anchor: readAnchorFile(anchor) as never });
        expect(report.problems).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report.records).toBeGreaterThan(previous);
        // Each run appends one record, then batches of 25: only whole batches may be in the log.
        if (mode === "batch") expect((report.records - runs) % 25).toBe(0);
        expect(report.signedThrough).toBeGreaterThan(0);
        previous = report.records;
      }
      // The next writer continues the chain and signs the tail the crash left unsigned.
      const store = AuditStore.open({ path: db, signer: loadSigner(keys.paths.privateKey), anchorPath: anchor, timer: false });
      store.append(toolCall(-1));
      store.close();
      expect(verifyAuditLog(db, { publicKey, anchor: readAnchorFile(anchor) as never })).toMatchObject({ ok: true, records: previous + 1, signedThrough: previous + 1, warnings: [] });
    });
  }
});
