import type { AuditKind, AuditRecord } from "../core/audit/audit-record.js";
import type { JsonValue } from "../core/audit/canonical-json.js";
import { HangarError } from "../core/errors.js";
import { openAuditDatabaseForReading } from "./audit-database.js";
import { filterSql, type RecordFilter } from "./record-filter.js";
import { RECORD_COLUMNS } from "./schema.js";

/**
 * Reading records back, for query and export. Reads trust the file: they do not verify
 * the chain (run verify for that), but they do fail loudly on a row that is not what the
 * store writes, rather than skip it.
 */
export interface ScanResult {
  readonly logId: string;
  readonly count: number;
}

interface Row {
  seq: number;
  ts: string;
  kind: string;
  data: string;
  prevHash: string;
  hash: string;
}

/** Calls `visit` for each matching record in seq order, streaming: memory stays flat for any log size. */
export function scanAuditLog(path: string, filter: RecordFilter, visit: (record: AuditRecord, logId: string) => void): ScanResult {
  const { db, logId } = openAuditDatabaseForReading(path);
  try {
    const { where, params } = filterSql(filter);
    const limit = filter.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(filter.limit))}` : "";
    let count = 0;
    db.exec("BEGIN");
    try {
      for (const row of db.prepare(`SELECT ${RECORD_COLUMNS} FROM records ${where} ORDER BY seq${limit}`).iterate(...params)) {
        visit(toRecord(row as Row, path), logId);
        count++;
      }
    } catch (err) {
      if (err instanceof HangarError) throw err;
      throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: cannot read records (${(err as Error).message}); run: hangar audit verify --db ${path}`, { cause: err, data: { path } });
    } finally {
      db.exec("COMMIT");
    }
    return { logId, count };
  } finally {
    db.close();
  }
}

export function queryAuditLog(path: string, filter: RecordFilter): { logId: string; records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  const { logId } = scanAuditLog(path, filter, (record) => records.push(record));
  return { logId, records };
}

function toRecord(row: Row, path: string): AuditRecord {
  let data: JsonValue;
  try {
    data = JSON.parse(row.data) as JsonValue;
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: record ${row.seq} has data that is not JSON; run: hangar audit verify --db ${path}`, { cause: err, data: { path, seq: row.seq } });
  }
  return { seq: row.seq, ts: row.ts, kind: row.kind as AuditKind, data, prevHash: row.prevHash, hash: row.hash };
}
