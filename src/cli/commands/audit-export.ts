import { closeSync, openSync, writeSync } from "node:fs";
import { EXPORT_FORMATS, exportAuditLog, isExportFormat } from "../../audit/index.js";
import { EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { auditDbFrom, CONFIG_OPTION, DB_OPTION, FILTER_OPTIONS, recordFilter } from "./audit-options.js";

export const auditExportCommand = defineCommand({
  name: "export",
  summary: "Export the audit log as JSON lines or OCSF events",
  usage: "hangar audit export --format jsonl|ocsf [--db <path> | --config <file>] [--out <file>] [filters]",
  description:
    "Writes one JSON object per line, in log order:\n" +
    "  jsonl  each record as stored (logId, seq, ts, kind, data, prevHash, hash); the chain can be\n" +
    "         re-checked from the export alone\n" +
    "  ocsf   OCSF 1.3.0 events: tool calls as API Activity (6003), egress as Network Activity\n" +
    "         (4001), DNS as DNS Activity (4003), lifecycle as Application Lifecycle (6002),\n" +
    "         approvals and policy events as Base Event (0); the record's seq and hashes are kept\n" +
    "         under unmapped.hangar\n" +
    "The filters of 'hangar audit query' apply, e.g. --since 1h for an incremental export.",
  options: {
    format: { type: "string", valueName: "jsonl|ocsf", description: "The output format (required)." },
    db: DB_OPTION,
    config: CONFIG_OPTION,
    out: { type: "string", valueName: "<file>", description: "Write to <file> instead of standard output." },
    ...FILTER_OPTIONS,
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success, 2 when the log cannot be read or on a usage error.",
  async run({ values }, io) {
    const format = values.format;
    if (format === undefined) throw usageError(`--format is required: ${EXPORT_FORMATS.join(" or ")}`);
    if (!isExportFormat(format)) throw usageError(`--format ${JSON.stringify(format)}: expected ${EXPORT_FORMATS.join(" or ")}`);
    const filter = recordFilter(values, Date.now());
    const db = await auditDbFrom(values);
    if (values.out === undefined) {
      exportAuditLog(db, { format, filter }, io.out);
      return EXIT_OK;
    }
    const fd = openSync(values.out, "w", 0o600);
    try {
      const { count } = exportAuditLog(db, { format, filter }, (chunk) => writeAll(fd, chunk));
      io.err(`exported ${count} record${count === 1 ? "" : "s"} as ${format} to ${values.out}\n`);
    } finally {
      closeSync(fd);
    }
    return EXIT_OK;
  },
});

function writeAll(fd: number, chunk: string): void {
  const bytes = Buffer.from(chunk, "utf8");
  for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
}
