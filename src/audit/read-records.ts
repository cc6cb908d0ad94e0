import type { AuditKind, AuditRecord } from "../core/audit/audit-record.js";
import { canonicalJson, type JsonValue } from "../core/audit/canonical-json.js";
import { HangarError } from "../core/errors.js";
import { openAuditDatabaseForReading } from "./audit-database.js";
import { filterSql, filtersData, matchesData, type RecordFilter } from "./record-filter.js";
import { RECORD_COLUMNS } from "./schema.js";

/**
 * Reading records back, for query and export. Reads trust the file: they do not verify
 * the chain (run verify for that), but they do fail loudly on a row that is not what the
 * store writes, rather than skip it. Filters on `data` run here, on the parsed value the
 * hash covers, and a record is handed out only if its text is the canonical one, so what a
 * query shows is what verify checked.
 */
export interface ScanResult {
  readonly logId: string;
  readonly count: number;
  /** The last record's seq in the snapshot scanned (0 for an empty log): a later scan with afterSeq = headSeq misses nothing. */
  readonly headSeq: number;
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
    const max = filter.limit !== undefined ? Math.max(0, Math.floor(filter.limit)) : Number.POSITIVE_INFINITY;
    // Without a filter on data, SQLite can stop at the limit itself.
    const limit = Number.isFinite(max) && !filtersData(filter) ? ` LIMIT ${max}` : "";
    let count = 0;
    let headSeq = 0;
    db.exec("BEGIN");
    try {
      headSeq = (db.prepare("SELECT seq FROM records ORDER BY seq DESC LIMIT 1").get() as { seq: number } | undefined)?.seq ?? 0;
      for (const row of db.prepare(`SELECT ${RECORD_COLUMNS} FROM records ${where} ORDER BY seq${limit}`).iterate(...params)) {
        if (count >= max) break;
        const r = row as Row;
        const data = parseData(r, path);
        if (!matchesData(r.kind, data, filter)) continue;
        visit(toRecord(r, data, path), logId);
        count++;
      }
    } catch (err) {
      if (err instanceof HangarError) throw err;
      throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: cannot read records (${(err as Error).message}); run: hangar audit verify --db ${path}`, { cause: err, data: { path } });
    } finally {
      db.exec("COMMIT");
    }
    return { logId, count, headSeq };
  } finally {
    db.close();
  }
}

export function queryAuditLog(path: string, filter: RecordFilter): { logId: string; records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  const { logId } = scanAuditLog(path, filter, (record) => records.push(record));
  return { logId, records };
}

function parseData(row: Row, path: string): JsonValue {
  try {
    return JSON.parse(row.data) as JsonValue;
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: record ${row.seq} has data that is not JSON; run: hangar audit verify --db ${path}`, { cause: err, data: { path, seq: row.seq } });
  }
}

function toRecord(row: Row, data: JsonValue, path: string): AuditRecord {
  // Native JSON.stringify reproduces canonical text unless the data has integer-like keys
  // (which objects order first); only then is the slower canonical writer needed.
  if (JSON.stringify(data) !== row.data && canonicalJson(data) !== row.data) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: record ${row.seq} has data that is not in canonical form, so it was altered outside Hangar; run: hangar audit verify --db ${path}`, { data: { path, seq: row.seq } });
  }
  return { seq: row.seq, ts: row.ts, kind: row.kind as AuditKind, data, prevHash: row.prevHash, hash: row.hash };
}
