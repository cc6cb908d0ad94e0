import { dirname, join } from "node:path";
import { PRIVATE_KEY_FILE, PUBLIC_KEY_FILE } from "./signing-keys.js";

/**
 * Where things live by default: everything beside the database, in the Hangar directory.
 *   .hangar/audit.db             the log (plus -wal and -shm while open)
 *   .hangar/audit.anchor.json    the latest signed checkpoint (copy it off the host)
 *   .hangar/audit-signing.key    private key, 0600
 *   .hangar/audit-signing.pub    public key
 */
export const DEFAULT_AUDIT_DB = ".hangar/audit.db";
export const ANCHOR_FILE = "audit.anchor.json";

export interface AuditPaths {
  readonly db: string;
  readonly anchor: string;
  readonly privateKey: string;
  readonly publicKey: string;
}

export function auditPaths(db: string = DEFAULT_AUDIT_DB): AuditPaths {
  const dir = dirname(db);
  return { db, anchor: join(dir, ANCHOR_FILE), privateKey: join(dir, PRIVATE_KEY_FILE), publicKey: join(dir, PUBLIC_KEY_FILE) };
}
