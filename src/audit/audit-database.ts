import { closeSync, existsSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { HangarError } from "../core/errors.js";
import { AUDIT_DB_FORMAT, SCHEMA_SQL } from "./schema.js";

/**
 * Opening an audit database, for writing (the store) or for reading (verify, query,
 * export). Readers never create, migrate or write: a verifier that changed what it checks
 * would prove nothing.
 */
export interface OpenedAuditDatabase {
  readonly db: Database.Database;
  readonly logId: string;
  readonly createdAt: string;
}

export type Synchronous = "normal" | "full";

export function openAuditDatabaseForReading(path: string): OpenedAuditDatabase {
  if (!existsSync(path)) throw new HangarError("HANGAR_AUDIT_UNREADABLE", `no audit log at ${path}`, { data: { path } });
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: cannot open: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  try {
    return { db, ...readMeta(db, path) };
  } catch (err) {
    db.close();
    throw err;
  }
}

export interface OpenForWritingOptions {
  readonly synchronous: Synchronous;
  readonly newLogId: () => string;
  readonly now: () => number;
}

/** Opens (creating if needed) a log for appending. New files are created mode 0600: records name people and servers. */
export function openAuditDatabaseForWriting(path: string, options: OpenForWritingOptions): OpenedAuditDatabase {
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    // Several writers (two gateways, or the CLI) take turns rather than failing at once.
    db.pragma("busy_timeout = 5000");
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: cannot open for writing: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  try {
    // Checked inside the write lock, so two processes opening a new log create it once.
    db.transaction(() => {
      const exists = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'meta'").get() as { n: number };
      if (exists.n > 0) return;
      db.exec(SCHEMA_SQL);
      const insert = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
      insert.run("format", AUDIT_DB_FORMAT);
      insert.run("log_id", options.newLogId());
      insert.run("created_at", new Date(options.now()).toISOString());
    }).immediate();
    return { db, ...readMeta(db, path) };
  } catch (err) {
    db.close();
    if (err instanceof HangarError) throw err;
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: ${(err as Error).message}`, { cause: err, data: { path } });
  }
}

function readMeta(db: Database.Database, path: string): { logId: string; createdAt: string } {
  let rows: { key: string; value: string }[];
  try {
    rows = db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[];
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path} is not a Hangar audit log (${(err as Error).message})`, { cause: err, data: { path } });
  }
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const format = meta.get("format");
  if (format !== AUDIT_DB_FORMAT) {
    throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: unsupported audit log format ${JSON.stringify(format)}; this Hangar reads ${AUDIT_DB_FORMAT}`, { data: { path, format } });
  }
  const logId = meta.get("log_id");
  if (logId === undefined || logId === "") throw new HangarError("HANGAR_AUDIT_UNREADABLE", `${path}: the audit log has no log id`, { data: { path } });
  return { logId, createdAt: meta.get("created_at") ?? "" };
}
