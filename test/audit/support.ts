import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { AuditStore, type AuditStoreOptions } from "../../src/audit/index.js";
import type { AuditEntry } from "../../src/core/audit/audit-record.js";
import { keyIdOf, type CheckpointSigner } from "../../src/core/audit/checkpoint.js";

/** A temporary directory removed by the returned dispose function. */
export function tempDir(): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), "hangar-audit-test-"));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestKeys {
  readonly signer: CheckpointSigner;
  readonly publicKey: KeyObject;
}

export function testKeys(): TestKeys {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { signer: { privateKey, keyId: keyIdOf(publicKey) }, publicKey };
}

/** A clock tests move by hand. */
export function manualClock(start = Date.parse("2025-03-01T12:00:00.000Z")): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export function toolCall(i: number, overrides: Partial<{ server: string; tool: string; identity: string }> = {}): AuditEntry {
  return {
    kind: "tool-call",
    data: {
      callId: `call-${i}`,
      identity: overrides.identity ?? "alice",
      session: "s-1",
      server: overrides.server ?? "everything",
      tool: overrides.tool ?? "echo",
      arguments: { message: `hello ${i}` },
      durationMs: 5,
      outcome: "ok",
    },
  };
}

export function egress(i: number, overrides: Partial<{ server: string; tool: string; identity: string; name: string; verdict: "allow" | "block" | "flag" | "would-block"; type: "dns" | "egress"; phase: "decide" | "close" }> = {}): AuditEntry {
  const server = overrides.server ?? "everything";
  return {
    kind: "egress",
    data: {
      server,
      event: {
        v: 1,
        ts: "2025-03-01T12:00:00.000Z",
        id: `e-${i}`,
        type: overrides.type ?? "egress",
        phase: overrides.phase ?? "decide",
        server,
        verdict: overrides.verdict ?? "allow",
        reasons: [overrides.verdict === "block" ? "undeclared-host" : "declared-host"],
        name: overrides.name ?? "api.example.com",
        port: 443,
        protocol: overrides.type === "dns" ? "dns" : "tls",
        ...(overrides.type === "dns" ? { recordType: "A" } : {}),
        ...(overrides.phase === "close" ? { bytesUp: 100, bytesDown: 2000, durationMs: 40 } : {}),
      },
      attribution: { calls: overrides.tool !== undefined ? [{ callId: `call-${i}`, tool: overrides.tool, identity: overrides.identity ?? "alice" }] : [] },
    },
  };
}

/** A log of `count` records (alternating tool calls and egress), checkpointed every `every`, closed (final checkpoint). */
export function writeLog(path: string, count: number, options: Partial<AuditStoreOptions> & { every?: number } = {}): AuditStore {
  const store = AuditStore.open({ path, timer: false, checkpointEvery: { records: options.every ?? 5, ms: Number.POSITIVE_INFINITY }, ...options });
  for (let i = 1; i <= count; i++) store.append(i % 2 === 1 ? toolCall(i) : egress(i, { tool: "echo" }));
  return store;
}

/** Opens the file as an attacker would: plain SQLite, append-only triggers dropped. */
export function tamper(path: string, fn: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    for (const { name } of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'").all() as { name: string }[]) db.exec(`DROP TRIGGER ${name}`);
    fn(db);
  } finally {
    db.close();
  }
}
