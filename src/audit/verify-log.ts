import type { KeyObject } from "node:crypto";
import { ChainVerifier, type CheckpointRow, type RecordRow, type VerifyReport } from "../core/audit/chain-verifier.js";
import type { SignedCheckpoint } from "../core/audit/checkpoint.js";
import { openAuditDatabaseForReading } from "./audit-database.js";
import { CHECKPOINT_COLUMNS, RECORD_COLUMNS } from "./schema.js";

/**
 * Verifies an audit log file: the chain, every checkpoint's signature, and the anchor.
 * Opens the file read-only and reads it in one read transaction, so a gateway appending
 * at the same time cannot make verify see half a batch.
 */
export interface VerifyLogOptions {
  /** The trusted public key. Without it, signatures go unchecked (and the report says so). */
  readonly publicKey?: KeyObject;
  readonly anchor?: SignedCheckpoint;
}

export function verifyAuditLog(path: string, options: VerifyLogOptions = {}): VerifyReport {
  const { db, logId } = openAuditDatabaseForReading(path);
  try {
    const verifier = new ChainVerifier({ logId, ...options });
    db.exec("BEGIN");
    try {
      for (const row of db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY seq, id`).iterate()) verifier.addCheckpoint(row as CheckpointRow);
      for (const row of db.prepare(`SELECT ${RECORD_COLUMNS} FROM records ORDER BY seq`).iterate()) verifier.addRecord(row as RecordRow);
    } finally {
      db.exec("COMMIT");
    }
    return verifier.finish();
  } finally {
    db.close();
  }
}
