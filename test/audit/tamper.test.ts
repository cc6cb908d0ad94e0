import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exportAuditLog, queryAuditLog, readAnchorFile, verifyAuditLog } from "../../src/audit/index.js";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { signCheckpoint } from "../../src/core/audit/checkpoint.js";
import { recordHash } from "../../src/core/audit/hash-chain.js";
import { tamper, tempDir, testKeys, writeLog } from "./support.js";

/**
 * Tamper evidence on real SQLite files. The log has 20 records and checkpoints at 1, 6, 11,
 * 16 and 20 (every 5 records, the first append, and close). Each attack opens the file with
 * plain SQLite, as anyone with write access could, and verify must name the first bad record.
 */
interface Row {
  seq: number;
  ts: string;
  kind: string;
  data: string;
  prev_hash: string;
  hash: string;
}

const keys = testKeys();
let temp: ReturnType<typeof tempDir>;
let db: string;
let anchor: string;

beforeEach(() => {
  temp = tempDir();
  db = join(temp.dir, "audit.db");
  anchor = join(temp.dir, "audit.anchor.json");
  writeLog(db, 20, { signer: keys.signer, anchorPath: anchor }).close();
});
afterEach(() => temp[Symbol.dispose]());

function verify(options: { withAnchor?: boolean; unsigned?: boolean } = {}): ReturnType<typeof verifyAuditLog> {
  const anchorCheckpoint = options.withAnchor === true ? readAnchorFile(anchor) : undefined;
  return verifyAuditLog(db, { ...(options.unsigned === true ? {} : { publicKey: keys.publicKey }), ...(anchorCheckpoint !== undefined ? { anchor: anchorCheckpoint } : {}) });
}

function rows(handle: Database.Database): Row[] {
  return handle.prepare("SELECT * FROM records ORDER BY seq").all() as Row[];
}

/** What an attacker without the key can do: rebuild a consistent chain from `from` on. */
function rehashFrom(handle: Database.Database, from: number): void {
  const update = handle.prepare("UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?");
  let prev = (handle.prepare("SELECT hash FROM records WHERE seq = ?").get(from - 1) as { hash: string }).hash;
  for (const r of rows(handle).filter((row) => row.seq >= from)) {
    const hash = recordHash({ seq: r.seq, ts: r.ts, kind: r.kind, dataJson: canonicalJson(JSON.parse(r.data)), prevHash: prev });
    update.run(prev, hash, r.seq);
    prev = hash;
  }
}

describe("an untouched log", () => {
  it("verifies, signed through its last record, with the anchor", () => {
    const report = verify({ withAnchor: true });
    expect(report).toMatchObject({ ok: true, records: 20, lastSeq: 20, signatures: "checked", checkpoints: { total: 5, valid: 5 }, signedThrough: 20, anchor: { seq: 20, ok: true }, problems: [] });
    expect(report.firstProblem).toBeUndefined();
    expect(report.warnings).toEqual([]);
  });
});

describe("verify names the first bad record when", () => {
  it("a record's data is edited in place", () => {
    tamper(db, (h) => h.prepare("UPDATE records SET data = replace(data, 'hello 7', 'bye 7') WHERE seq = 7").run());
    const report = verify();
    expect(report.ok).toBe(false);
    expect(report.firstProblem).toMatchObject({ seq: 7, code: "hash-mismatch" });
    expect(report.problems).toHaveLength(1);
  });

  it("a record's timestamp is edited", () => {
    tamper(db, (h) => h.prepare("UPDATE records SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 3").run());
    expect(verify().firstProblem).toMatchObject({ seq: 3, code: "hash-mismatch" });
  });

  it("a record is edited and rehashed (the link to the next one breaks)", () => {
    tamper(db, (h) => {
      h.prepare("UPDATE records SET data = replace(data, 'hello 7', 'bye 7') WHERE seq = 7").run();
      const r = rows(h)[6] as Row;
      h.prepare("UPDATE records SET hash = ? WHERE seq = 7").run(recordHash({ seq: 7, ts: r.ts, kind: r.kind, dataJson: canonicalJson(JSON.parse(r.data)), prevHash: r.prev_hash }));
    });
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 8, code: "broken-link" });
    expect(report.firstProblem?.message).toMatch(/between records 7 and 8/);
  });

  it("the chain is rebuilt after an edit (only a signed checkpoint can tell)", () => {
    tamper(db, (h) => {
      h.prepare("UPDATE records SET data = replace(data, 'hello 7', 'bye 7') WHERE seq = 7").run();
      rehashFrom(h, 7);
    });
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 7, code: "checkpoint-mismatch" });
    expect(report.firstProblem?.message).toMatch(/records 7\.\.11 were rewritten/);
    expect(report.signedThrough).toBe(6);
  });

  it("a record is deleted", () => {
    tamper(db, (h) => h.prepare("DELETE FROM records WHERE seq = 9").run());
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 9, code: "missing-record" });
    expect(report.problems.map((p) => [p.seq, p.code])).toEqual([
      [9, "missing-record"],
      [10, "broken-link"],
    ]);
  });

  it("a record is deleted and the later ones renumbered", () => {
    tamper(db, (h) => {
      h.prepare("DELETE FROM records WHERE seq = 9").run();
      h.prepare("UPDATE records SET seq = seq + 1000 WHERE seq > 9").run();
      h.prepare("UPDATE records SET seq = seq - 1001 WHERE seq > 1000").run();
    });
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 9, code: "broken-link" });
    expect(report.problems.map((p) => p.code)).toContain("truncated"); // the checkpoint at 20 outlives the log
  });

  it("a forged record is inserted, correctly linked, and the later ones renumbered", () => {
    tamper(db, (h) => {
      const eight = rows(h)[7] as Row;
      h.prepare("UPDATE records SET seq = seq + 1000 WHERE seq >= 9").run();
      h.prepare("UPDATE records SET seq = seq - 999 WHERE seq >= 1009").run();
      const data = canonicalJson({ callId: "forged", identity: "mallory", server: "everything", tool: "echo", arguments: {}, durationMs: 1, outcome: "ok" });
      const ts = "2025-03-01T12:00:00.000Z";
      const hash = recordHash({ seq: 9, ts, kind: "tool-call", dataJson: data, prevHash: eight.hash });
      h.prepare("INSERT INTO records (seq, ts, kind, data, prev_hash, hash) VALUES (9, ?, 'tool-call', ?, ?, ?)").run(ts, data, eight.hash, hash);
    });
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 9, code: "inserted-record" });
    expect(report.firstProblem?.message).toMatch(/record 9 was inserted: record 10 links directly to record 8/);
  });

  it("two records are swapped", () => {
    tamper(db, (h) => {
      h.prepare("UPDATE records SET seq = -1 WHERE seq = 12").run();
      h.prepare("UPDATE records SET seq = 12 WHERE seq = 13").run();
      h.prepare("UPDATE records SET seq = 13 WHERE seq = -1").run();
    });
    const report = verify();
    expect(report.firstProblem?.seq).toBe(12);
    expect(report.problems.every((p) => p.seq >= 12 && p.seq <= 13)).toBe(true);
  });

  it("the tail is truncated (a checkpoint in the log vouches for the lost records)", () => {
    tamper(db, (h) => h.prepare("DELETE FROM records WHERE seq > 17").run());
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 18, code: "truncated" });
    expect(report.firstProblem?.message).toMatch(/vouches for record 20, but the log ends at record 17/);
  });

  it("the tail and its checkpoints are truncated (the anchor vouches for the lost records)", () => {
    tamper(db, (h) => {
      h.prepare("DELETE FROM records WHERE seq > 17").run();
      h.prepare("DELETE FROM checkpoints WHERE seq > 17").run();
    });
    const report = verify({ withAnchor: true });
    expect(report.firstProblem).toMatchObject({ seq: 18, code: "truncated" });
    expect(report.firstProblem?.message).toMatch(/the anchor vouches for record 20/);
  });

  it("a checkpoint's signature is replaced by another key's", () => {
    const mallory = testKeys();
    tamper(db, (h) => {
      const c = h.prepare("SELECT seq, ts, hash FROM checkpoints WHERE seq = 11").get() as { seq: number; ts: string; hash: string };
      const forged = signCheckpoint({ logId: logIdOf(h), ...c }, mallory.signer);
      h.prepare("UPDATE checkpoints SET key_id = ?, signature = ? WHERE seq = 11").run(forged.keyId, forged.signature);
    });
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 11, code: "checkpoint-forged" });
    expect(report.firstProblem?.message).toContain(mallory.signer.keyId);
  });

  it("a checkpoint's payload is altered to vouch for a later record", () => {
    tamper(db, (h) => {
      const twelve = rows(h)[11] as Row;
      h.prepare("UPDATE checkpoints SET seq = 12, hash = ? WHERE seq = 11").run(twelve.hash);
    });
    expect(verify().firstProblem).toMatchObject({ seq: 12, code: "checkpoint-forged" });
  });

  it("the chain is rebuilt and re-signed with the attacker's own key", () => {
    const mallory = testKeys();
    tamper(db, (h) => {
      h.prepare("UPDATE records SET data = replace(data, 'hello 13', 'bye 13') WHERE seq = 13").run();
      rehashFrom(h, 13);
      const logId = logIdOf(h);
      for (const c of h.prepare("SELECT id, seq, ts FROM checkpoints WHERE seq >= 13").all() as { id: number; seq: number; ts: string }[]) {
        const hash = (h.prepare("SELECT hash FROM records WHERE seq = ?").get(c.seq) as { hash: string }).hash;
        const forged = signCheckpoint({ logId, seq: c.seq, ts: c.ts, hash }, mallory.signer);
        h.prepare("UPDATE checkpoints SET hash = ?, key_id = ?, signature = ? WHERE id = ?").run(hash, forged.keyId, forged.signature, c.id);
      }
    });
    const report = verify({ withAnchor: true });
    expect(report.ok).toBe(false);
    // The genuine anchor still vouches for the original record 20; nothing valid vouches for 12..20.
    expect(report.firstProblem).toMatchObject({ seq: 12, code: "checkpoint-mismatch" });
    expect(report.firstProblem?.message).toMatch(/records 12\.\.20 were rewritten: the anchor/);
    expect(report.problems.filter((p) => p.code === "checkpoint-forged").map((p) => p.seq)).toEqual([16, 20]);
    expect(report.signedThrough).toBe(11);
  });

  it("the log id is changed (records could then be spliced from another log)", () => {
    tamper(db, (h) => h.prepare("UPDATE meta SET value = 'another-log' WHERE key = 'log_id'").run());
    const report = verify();
    expect(report.firstProblem).toMatchObject({ seq: 1, code: "genesis-mismatch" });
    expect(report.checkpoints.valid).toBe(0);
  });

  it("a row is malformed", () => {
    tamper(db, (h) => h.prepare("UPDATE records SET kind = 'nonsense' WHERE seq = 4").run());
    expect(verify().firstProblem).toMatchObject({ seq: 4, code: "malformed-record" });
  });
});

describe("a record whose stored text is not the canonical text that was hashed", () => {
  // JSON.parse (verify) keeps the last of two equal keys, SQLite's json_extract the first:
  // a prepended duplicate leaves the hash intact and used to hide the record from filters.
  const prependKey = (h: Database.Database, seq: number, member: string): void => {
    h.prepare("UPDATE records SET data = '{' || ? || ',' || substr(data, 2) WHERE seq = ?").run(member, seq);
  };

  it("fails verify, naming the record, when a duplicate key is prepended", () => {
    tamper(db, (h) => prependKey(h, 7, '"server":"decoy"'));
    const report = verify({ withAnchor: true });
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.firstProblem).toMatchObject({ seq: 7, code: "non-canonical-record" });
    expect(report.firstProblem?.message).toContain(`record 7 was altered: its stored data is not the canonical text that was hashed (from character 3 it reads '{"server":"decoy","argumen…' where the canonical text reads '{"arguments":{"message":"h…')`);
  });

  it("cannot hide from a server filter: query and export read the hashed value or refuse the record", () => {
    tamper(db, (h) => prependKey(h, 7, '"server":"decoy"'));
    // The hashed value of record 7 is server "everything": the decoy matches nothing.
    expect(queryAuditLog(db, { server: "decoy" }).records).toEqual([]);
    expect(() => queryAuditLog(db, { server: "everything" })).toThrow(/record 7 has data that is not in canonical form/);
    expect(() => exportAuditLog(db, { format: "jsonl", filter: { server: "everything" } }, () => undefined)).toThrow(/record 7 has data that is not in canonical form/);
    // Records the tampering does not touch are still readable.
    expect(queryAuditLog(db, { server: "everything", limit: 6 }).records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("cannot hide from a server filter by spelling the hashed value with escapes", () => {
    tamper(db, (h) => {
      h.prepare(`UPDATE records SET data = replace(data, '"server":"everything"', '"server":"\\u0065verything"') WHERE seq = 7`).run();
      prependKey(h, 7, '"server":"decoy"');
    });
    expect(verify().problems.map((p) => [p.seq, p.code])).toEqual([[7, "non-canonical-record"]]);
    expect(() => queryAuditLog(db, { server: "everything" })).toThrow(/record 7 has data that is not in canonical form/);
  });

  it("cannot hide an egress record from a tool filter by shadowing its attribution", () => {
    tamper(db, (h) => prependKey(h, 8, '"attribution":{"calls":[]}'));
    expect(verify().firstProblem).toMatchObject({ seq: 8, code: "non-canonical-record" });
    expect(() => queryAuditLog(db, { tool: "echo", kinds: ["egress"] })).toThrow(/record 8 has data that is not in canonical form/);
  });

  it("fails verify when the data is re-serialised with the same meaning", () => {
    tamper(db, (h) => {
      const r = rows(h)[4] as Row;
      h.prepare("UPDATE records SET data = ? WHERE seq = 5").run(JSON.stringify(JSON.parse(r.data), null, 1));
    });
    const report = verify();
    expect(report.problems.map((p) => [p.seq, p.code])).toEqual([[5, "non-canonical-record"]]);
    // The stored text is the attacker's: its newlines are shown escaped, never printed.
    expect(report.firstProblem?.message).toContain("it reads '{\\u000a \"arguments\"");
    expect(report.firstProblem?.message).not.toContain("\n");
  });
});

describe("limits verify reports honestly", () => {
  it("cannot see a truncation that also removed the checkpoints when there is no anchor", () => {
    tamper(db, (h) => {
      h.prepare("DELETE FROM records WHERE seq > 17").run();
      h.prepare("DELETE FROM checkpoints WHERE seq > 17").run();
    });
    const report = verify();
    expect(report.ok).toBe(true);
    expect(report.records).toBe(17);
    expect(report.warnings).toContain("no anchor: truncation after the last checkpoint kept in the log cannot be detected");
    expect(report.warnings).toContain("records 17..17 come after the last signed checkpoint: only their chain protects them");
  });

  it("does not catch a forged checkpoint without a public key, and says signatures were not checked", () => {
    const mallory = testKeys();
    tamper(db, (h) => {
      const c = h.prepare("SELECT seq, ts, hash FROM checkpoints WHERE seq = 11").get() as { seq: number; ts: string; hash: string };
      const forged = signCheckpoint({ logId: logIdOf(h), ...c }, mallory.signer);
      h.prepare("UPDATE checkpoints SET key_id = ?, signature = ? WHERE seq = 11").run(forged.keyId, forged.signature);
    });
    const report = verify({ unsigned: true });
    expect(report).toMatchObject({ ok: true, signatures: "unchecked" });
    expect(report.warnings[0]).toBe("signatures not checked: no public key given");
  });

  it("rejects an anchor of another log", () => {
    const other = join(temp.dir, "other.db");
    const otherAnchor = join(temp.dir, "other.anchor.json");
    writeLog(other, 3, { signer: keys.signer, anchorPath: otherAnchor }).close();
    const report = verifyAuditLog(db, { publicKey: keys.publicKey, anchor: readAnchorFile(otherAnchor) as never });
    expect(report.firstProblem).toMatchObject({ seq: 1, code: "anchor-invalid" });
  });
});

function logIdOf(h: Database.Database): string {
  return (h.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
}
