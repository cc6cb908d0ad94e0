import type { AuditRecord } from "../core/audit/audit-record.js";
import { toOcsf } from "../core/audit/ocsf.js";
import { scanAuditLog, type ScanResult } from "./read-records.js";
import type { RecordFilter } from "./record-filter.js";

/**
 * Export for SIEMs and archives, one JSON object per line.
 *  - jsonl: the records as stored, with seq, hashes and the log id, so anyone holding the
 *    public key and the export can re-check the chain outside Hangar;
 *  - ocsf: OCSF 1.3.0 events (see core/audit/ocsf.ts for the mapping).
 */
export const EXPORT_FORMATS = ["jsonl", "ocsf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function isExportFormat(value: string): value is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(value);
}

export interface ExportOptions {
  readonly format: ExportFormat;
  readonly filter?: RecordFilter;
  readonly productVersion?: string;
}

export function jsonlLine(record: AuditRecord, logId: string): string {
  const { seq, ts, kind, data, prevHash, hash } = record;
  return `${JSON.stringify({ logId, seq, ts, kind, data, prevHash, hash })}\n`;
}

/** Streams every matching record to `write` as one line each; writes are batched to ~64 KB. */
export function exportAuditLog(path: string, options: ExportOptions, write: (chunk: string) => void): ScanResult {
  let buffer = "";
  const line =
    options.format === "jsonl"
      ? jsonlLine
      : (record: AuditRecord, logId: string): string =>
          `${JSON.stringify(toOcsf(record, { logId, ...(options.productVersion !== undefined ? { productVersion: options.productVersion } : {}) }))}\n`;
  const result = scanAuditLog(path, options.filter ?? {}, (record, logId) => {
    buffer += line(record, logId);
    if (buffer.length >= 64 * 1024) {
      write(buffer);
      buffer = "";
    }
  });
  if (buffer !== "") write(buffer);
  return result;
}
