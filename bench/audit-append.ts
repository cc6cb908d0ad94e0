/**
 * Audit append rate: hash-chained appends per second through AuditStore, single-record
 * (one transaction each) and batched, with synchronous=NORMAL and FULL, next to plain
 * un-chained inserts into the same table shape in the same run. Target: ≥ 20k chained/s.
 *
 *   node --import tsx bench/audit-append.ts [--records 50000] [--batch 100] [--json]
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { AuditStore } from "../src/audit/audit-store.js";
import { SCHEMA_SQL } from "../src/audit/schema.js";
import type { AuditEntry } from "../src/core/audit/audit-record.js";
import { keyIdOf } from "../src/core/audit/checkpoint.js";

const { values } = parseArgs({
  options: { records: { type: "string", default: "50000" }, batch: { type: "string", default: "100" }, json: { type: "boolean", default: false } },
});
const RECORDS = Number(values.records);
const BATCH = Number(values.batch);

/** A realistic mix: a tool call with arguments and a result summary, then the egress it caused. */
function entry(i: number): AuditEntry {
  if (i % 2 === 0) {
    return {
      kind: "tool-call",
      data: {
        callId: `call-${i}`,
        identity: "alice@example.com",
        session: "session-1",
        server: "everything",
        tool: "gzip-file-as-resource",
        arguments: { name: `file-${i}.gz`, data: "https://example.com/data.txt", outputType: "resourceLink" },
        result: { isError: false, contentTypes: { resource_link: 1 }, textBytes: 0 },
        durationMs: 12.5,
        outcome: "ok",
      },
    };
  }
  return {
    kind: "egress",
    data: {
      server: "everything",
      event: { v: 1, ts: "2025-01-01T00:00:00.000Z", id: `e-${i}`, type: "egress", phase: "close", server: "everything", verdict: "allow", reasons: ["declared-host"], rule: "example.com", name: "example.com", port: 443, ip: "93.184.216.34", protocol: "tls", path: "transparent", sni: "example.com", bytesUp: 517, bytesDown: 4096, durationMs: 48 },
      attribution: { calls: [{ callId: `call-${i - 1}`, tool: "gzip-file-as-resource", identity: "alice@example.com", session: "session-1" }] },
    },
  };
}

interface Result {
  readonly mode: string;
  readonly synchronous: "normal" | "full";
  readonly chained: boolean;
  readonly records: number;
  readonly perSecond: number;
}

const dir = mkdtempSync(join(tmpdir(), "hangar-audit-bench-"));
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const signer = { privateKey, keyId: keyIdOf(publicKey) };
const entries = Array.from({ length: RECORDS }, (_, i) => entry(i));
let run = 0;

function timed(count: number, fn: () => void): number {
  const started = process.hrtime.bigint();
  fn();
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

function chained(mode: "single" | "batch", synchronous: "normal" | "full", count: number): Result {
  const store = AuditStore.open({ path: join(dir, `chained-${run++}.db`), signer, synchronous, timer: false });
  const slice = entries.slice(0, count);
  const perSecond = timed(count, () => {
    if (mode === "single") for (const e of slice) store.append(e);
    else for (let i = 0; i < slice.length; i += BATCH) store.appendBatch(slice.slice(i, i + BATCH));
  });
  store.close();
  return { mode, synchronous, chained: true, records: count, perSecond };
}

/** The same table and index, plain JSON and a constant hash: what the chain costs on top. */
function plain(mode: "single" | "batch", synchronous: "normal" | "full", count: number): Result {
  const db = new Database(join(dir, `plain-${run++}.db`));
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
  db.exec(SCHEMA_SQL);
  const insert = db.prepare("INSERT INTO records (seq, ts, kind, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)");
  const hash = "0".repeat(64);
  const slice = entries.slice(0, count);
  let seq = 0;
  const one = (e: AuditEntry): void => void insert.run(++seq, new Date().toISOString(), e.kind, JSON.stringify(e.data), hash, hash);
  const batch = db.transaction((list: AuditEntry[]) => list.forEach(one));
  const perSecond = timed(count, () => {
    if (mode === "single") for (const e of slice) one(e);
    else for (let i = 0; i < slice.length; i += BATCH) batch.immediate(slice.slice(i, i + BATCH));
  });
  db.close();
  return { mode, synchronous, chained: false, records: count, perSecond };
}

try {
  // FULL single-record mode fsyncs every commit: fewer records keep the run short.
  const fullSingle = Math.min(RECORDS, 5000);
  chained("batch", "normal", Math.min(RECORDS, 5000)); // warm-up: JIT and page cache
  const results: Result[] = [];
  for (const synchronous of ["normal", "full"] as const) {
    for (const mode of ["single", "batch"] as const) {
      const count = synchronous === "full" && mode === "single" ? fullSingle : RECORDS;
      results.push(plain(mode, synchronous, count), chained(mode, synchronous, count));
    }
  }
  const rows = results.filter((r) => r.chained).map((c) => {
    const p = results.find((r) => !r.chained && r.mode === c.mode && r.synchronous === c.synchronous) as Result;
    return { mode: c.mode, synchronous: c.synchronous, records: c.records, chainedPerSecond: Math.round(c.perSecond), plainPerSecond: Math.round(p.perSecond), ratio: Number((c.perSecond / p.perSecond).toFixed(3)) };
  });
  if (values.json) {
    console.log(JSON.stringify({ batch: BATCH, target: 20_000, rows }, null, 2));
  } else {
    console.log(`audit append (batch = ${BATCH} records/transaction, checkpoint every 1000 records, target ≥ 20000 chained/s)`);
    console.log(`${"mode".padEnd(8)}${"sync".padEnd(8)}${"records".padStart(9)}${"chained/s".padStart(12)}${"plain/s".padStart(12)}${"ratio".padStart(8)}  target`);
    for (const r of rows) {
      console.log(`${r.mode.padEnd(8)}${r.synchronous.padEnd(8)}${String(r.records).padStart(9)}${String(r.chainedPerSecond).padStart(12)}${String(r.plainPerSecond).padStart(12)}${r.ratio.toFixed(2).padStart(8)}  ${r.chainedPerSecond >= 20_000 ? "met" : "missed"}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
