export { AuditStore, DEFAULT_CHECKPOINT_EVERY, type AuditStoreOptions } from "./audit-store.js";
export { openAuditDatabaseForReading, type OpenedAuditDatabase, type Synchronous } from "./audit-database.js";
export { createSigningKeys, DEFAULT_HANGAR_DIR, keyPaths, loadPublicKey, loadSigner, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, type CreatedKeys, type KeyPaths } from "./signing-keys.js";
export { readAnchorFile, writeAnchorFile } from "./anchor-file.js";
export { verifyAuditLog, type VerifyLogOptions } from "./verify-log.js";
export { queryAuditLog, scanAuditLog, type ScanResult } from "./read-records.js";
export { filterSql, type RecordFilter } from "./record-filter.js";
export { EXPORT_FORMATS, exportAuditLog, isExportFormat, jsonlLine, type ExportFormat, type ExportOptions } from "./export-log.js";
export { auditPaths, DEFAULT_AUDIT_DB, type AuditPaths } from "./audit-paths.js";
