import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore, readAnchorFile, verifyAuditLog } from "../../src/audit/index.js";
import { genesisHash } from "../../src/core/audit/hash-chain.js";
import { isHangarError } from "../../src/core/errors.js";
import { egress, manualClock, tempDir, testKeys, toolCall } from "./support.js";

const keys = testKeys();
let temp: ReturnType<typeof tempDir>;
let path: string;

beforeEach(() => {
  temp = tempDir();
  path = join(temp.dir, "audit.db");
});
afterEach(() => temp[Symbol.dispose]());

function checkpointSeqs(): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT seq FROM checkpoints ORDER BY id").all() as { seq: number }[]).map((r) => r.seq);
  } finally {
    db.close();
  }
}

describe("AuditStore appends", () => {
  it("numbers records densely from 1 and chains them from the log's genesis", () => {
    const clock = manualClock();
    const store = AuditStore.open({ path, now: clock.now, newLogId: () => "log-1" });
    const first = store.append(toolCall(1));
    clock.advance(5);
    const [second, third] = store.appendBatch([egress(2), egress(3)]);
    expect(store.logId).toBe("log-1");
    expect(first).toMatchObject({ seq: 1, ts: "2025-03-01T12:00:00.000Z", kind: "tool-call", prevHash: genesisHash("log-1") });
    expect(second).toMatchObject({ seq: 2, ts: "2025-03-01T12:00:00.005Z", prevHash: first.hash });
    expect(third).toMatchObject({ seq: 3, prevHash: second?.hash });
    expect(store.head()).toEqual({ seq: 3, hash: third?.hash });
    store.close();
    expect(verifyAuditLog(path)).toMatchObject({ ok: true, records: 3, logId: "log-1" });
  });

  it("keeps a caller's own timestamp and refuses one that is not ISO-8601 UTC", () => {
    const store = AuditStore.open({ path });
    expect(store.append({ ...toolCall(1), ts: "2024-12-31T23:59:59.999Z" }).ts).toBe("2024-12-31T23:59:59.999Z");
    expect(() => store.append({ ...toolCall(2), ts: "yesterday" })).toThrow(/not ISO-8601/);
    store.close();
  });

  it("writes a batch wholly or not at all", () => {
    const store = AuditStore.open({ path });
    store.append(toolCall(1));
    const bad = { kind: "policy" as const, data: { action: "x", detail: { n: Number.NaN } } };
    let error: unknown;
    try {
      store.appendBatch([egress(2), egress(3), bad as never, egress(4)]);
    } catch (err) {
      error = err;
    }
    expect(isHangarError(error, "HANGAR_AUDIT_INVALID_ENTRY")).toBe(true);
    expect((error as Error).message).toBe("$.detail.n: NaN cannot be stored in the audit log");
    expect(store.head().seq).toBe(1);
    expect(store.append(egress(5)).seq).toBe(2);
    store.close();
    expect(verifyAuditLog(path).ok).toBe(true);
  });

  it("refuses an unknown kind", () => {
    const store = AuditStore.open({ path });
    expect(() => store.append({ kind: "gossip", data: {} } as never)).toThrow(/unknown kind "gossip"/);
    store.close();
  });

  it("continues the same chain after reopening", () => {
    const a = AuditStore.open({ path, signer: keys.signer, timer: false });
    a.append(toolCall(1));
    const logId = a.logId;
    a.close();
    const b = AuditStore.open({ path, signer: keys.signer, timer: false });
    expect(b.logId).toBe(logId);
    expect(b.append(toolCall(2)).seq).toBe(2);
    b.close();
    expect(verifyAuditLog(path, { publicKey: keys.publicKey })).toMatchObject({ ok: true, records: 2, signedThrough: 2 });
  });

  it("builds one chain when two writers share the file", () => {
    const a = AuditStore.open({ path });
    const b = AuditStore.open({ path });
    for (let i = 0; i < 50; i++) (i % 3 === 0 ? a : b).appendBatch([toolCall(i), egress(i)]);
    a.close();
    b.close();
    expect(verifyAuditLog(path)).toMatchObject({ ok: true, records: 100 });
  });

  it("is append-only for every SQLite client, not only through the API", () => {
    const store = AuditStore.open({ path });
    store.append(toolCall(1));
    store.close();
    const db = new Database(path);
    expect(() => db.prepare("UPDATE records SET data = '{}' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => db.prepare("DELETE FROM records").run()).toThrow(/append-only/);
    expect(() => db.prepare("DELETE FROM meta").run()).toThrow(/append-only/);
    db.close();
  });

  it("creates the database file readable by its owner only", () => {
    AuditStore.open({ path }).close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("uses WAL", () => {
    const store = AuditStore.open({ path });
    const db = new Database(path, { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
    store.close();
  });
});

describe("AuditStore checkpoints", () => {
  it("signs the first record, then every N records, and the head on close", () => {
    const store = AuditStore.open({ path, signer: keys.signer, timer: false, checkpointEvery: { records: 10, ms: 3_600_000 } });
    for (let i = 1; i <= 25; i++) store.append(toolCall(i));
    store.close();
    expect(checkpointSeqs()).toEqual([1, 11, 21, 25]);
  });

  it("counts a batch as many records", () => {
    const store = AuditStore.open({ path, signer: keys.signer, timer: false, checkpointEvery: { records: 10, ms: 3_600_000 } });
    store.append(toolCall(0));
    store.appendBatch(Array.from({ length: 15 }, (_, i) => egress(i)));
    expect(checkpointSeqs()).toEqual([1, 16]);
    store.close();
  });

  it("signs after T milliseconds of unsigned records (clock injected)", () => {
    const clock = manualClock();
    const store = AuditStore.open({ path, signer: keys.signer, now: clock.now, timer: false, checkpointEvery: { records: 1000, ms: 60_000 } });
    store.append(toolCall(1)); // first record: signed at once
    clock.advance(30_000);
    store.append(toolCall(2));
    expect(checkpointSeqs()).toEqual([1]);
    clock.advance(30_000);
    store.append(toolCall(3));
    expect(checkpointSeqs()).toEqual([1, 3]);
    store.destroy();
  });

  it("signs on a timer when records stop coming", async () => {
    const store = AuditStore.open({ path, signer: keys.signer, checkpointEvery: { records: 1000, ms: 50 } });
    store.append(toolCall(1));
    store.append(toolCall(2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(checkpointSeqs()).toEqual([1, 2]);
    store.destroy();
  });

  it("does not sign the same head twice", () => {
    const store = AuditStore.open({ path, signer: keys.signer, timer: false });
    store.append(toolCall(1));
    expect(store.checkpoint()).toBeUndefined();
    store.close();
    const again = AuditStore.open({ path, signer: keys.signer, timer: false });
    again.close();
    expect(checkpointSeqs()).toEqual([1]);
  });

  it("keeps the anchor file in step with the latest checkpoint", () => {
    const anchorPath = join(temp.dir, "audit.anchor.json");
    const store = AuditStore.open({ path, signer: keys.signer, anchorPath, timer: false, checkpointEvery: { records: 3 } });
    for (let i = 1; i <= 7; i++) store.append(toolCall(i));
    expect(readAnchorFile(anchorPath)).toMatchObject({ logId: store.logId, seq: 7, keyId: keys.signer.keyId });
    store.append(toolCall(8));
    store.close();
    expect(readAnchorFile(anchorPath)?.seq).toBe(8);
  });

  it("leaves the tail unsigned after destroy(), and verify says how much", () => {
    const store = AuditStore.open({ path, signer: keys.signer, timer: false, checkpointEvery: { records: 5 } });
    for (let i = 1; i <= 8; i++) store.append(toolCall(i));
    store.destroy();
    const report = verifyAuditLog(path, { publicKey: keys.publicKey });
    expect(report).toMatchObject({ ok: true, records: 8, signedThrough: 6 });
    expect(report.warnings).toContain("records 7..8 come after the last signed checkpoint: only their chain protects them");
  });
});

describe("AuditStore lifecycle", () => {
  it("can be closed twice, and refuses appends after close with HANGAR_CLOSED", () => {
    const store = AuditStore.open({ path });
    store.close();
    store.close();
    expect(store.closed).toBe(true);
    let error: unknown;
    try {
      store.append(toolCall(1));
    } catch (err) {
      error = err;
    }
    expect(isHangarError(error, "HANGAR_CLOSED")).toBe(true);
  });

  it("is Disposable", () => {
    {
      using store = AuditStore.open({ path, signer: keys.signer, timer: false });
      store.append(toolCall(1));
    }
    expect(checkpointSeqs()).toEqual([1]);
  });

  it("refuses a file that is not an audit log", () => {
    const other = join(temp.dir, "other.db");
    const db = new Database(other);
    db.exec("CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('format', 'something-else')");
    db.close();
    expect(() => AuditStore.open({ path: other })).toThrow(/unsupported audit log format "something-else"/);
  });
});
