import { queryAuditLog } from "../../audit/index.js";
import { EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { auditDbFrom, CONFIG_OPTION, DB_OPTION, FILTER_OPTIONS, recordFilter } from "./audit-options.js";
import { formatRecordLine } from "./audit-output.js";

export const auditQueryCommand = defineCommand({
  name: "query",
  summary: "Find audit records by server, tool, identity, kind and time",
  usage: "hangar audit query [--db <path> | --config <file>] [--server <name>] [--tool <name>] [--identity <id>] [--kind <kinds>] [--since <time>] [--until <time>] [--limit <n>] [--json]",
  description:
    "Prints matching records in log order, one per line. Filters combine with AND. --tool and\n" +
    "--identity also match egress records attributed to that tool or identity, so\n" +
    "  hangar audit query --server everything --tool fetch --kind egress\n" +
    "answers \"what did tool fetch of server everything connect to, for whom, and when\".\n" +
    "Query reads the log as it is; run 'hangar audit verify' to know it was not altered.",
  options: {
    db: DB_OPTION,
    config: CONFIG_OPTION,
    ...FILTER_OPTIONS,
    limit: { type: "string", valueName: "<n>", description: "At most n records." },
    json: { type: "boolean", description: "Print { logId, count, records } as JSON, records with their hashes." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success (also when nothing matches), 2 when the log cannot be read or on a usage error.",
  async run({ values }, io) {
    const filter = recordFilter(values, Date.now());
    let limit: number | undefined;
    if (values.limit !== undefined) {
      limit = Number(values.limit);
      if (!Number.isSafeInteger(limit) || limit < 0) throw usageError(`--limit ${JSON.stringify(values.limit)} is not a whole number`);
    }
    const { logId, records } = queryAuditLog(await auditDbFrom(values), { ...filter, ...(limit !== undefined ? { limit } : {}) });
    if (values.json === true) {
      io.out(`${JSON.stringify({ logId, count: records.length, records }, null, 2)}\n`);
    } else {
      io.out(records.map((r) => `${formatRecordLine(r)}\n`).join(""));
      io.err(`${records.length} record${records.length === 1 ? "" : "s"}\n`);
    }
    return EXIT_OK;
  },
});
