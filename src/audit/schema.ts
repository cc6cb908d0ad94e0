/**
 * The audit database, format 1. Three tables:
 *  - meta: the log id (which the genesis hash and every signature bind to) and the format;
 *  - records: the hash chain, one row per record, seq = rowid (dense, 1..n);
 *  - checkpoints: signed (seq, hash, ts) statements.
 * The triggers make the API's append-only rule hold for every SQLite client too. They
 * stop mistakes, not attackers (who can drop them): tamper evidence comes from the chain
 * and the signatures, never from the triggers.
 */
export const AUDIT_DB_FORMAT = "hangar-audit/1";

export const SCHEMA_SQL = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE records (
  seq       INTEGER PRIMARY KEY,
  ts        TEXT NOT NULL,
  kind      TEXT NOT NULL,
  data      TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;
CREATE INDEX records_ts ON records (ts);

CREATE TABLE checkpoints (
  id        INTEGER PRIMARY KEY,
  seq       INTEGER NOT NULL,
  ts        TEXT NOT NULL,
  hash      TEXT NOT NULL,
  key_id    TEXT NOT NULL,
  signature TEXT NOT NULL
) STRICT;
CREATE INDEX checkpoints_seq ON checkpoints (seq);

CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER records_append_only_delete BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER meta_append_only_update BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'audit meta is append-only'); END;
CREATE TRIGGER meta_append_only_delete BEFORE DELETE ON meta BEGIN SELECT RAISE(ABORT, 'audit meta is append-only'); END;
`;

/** Column lists shared by the store, verify, query and export, so they read what the store writes. */
export const RECORD_COLUMNS = "seq, ts, kind, data, prev_hash AS prevHash, hash";
export const CHECKPOINT_COLUMNS = "seq, ts, hash, key_id AS keyId, signature";
