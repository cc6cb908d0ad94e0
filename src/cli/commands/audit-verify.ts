import { existsSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import type { SignedCheckpoint } from "../../core/audit/checkpoint.js";
import { auditPaths, loadPublicKey, readAnchorFile, verifyAuditLog } from "../../audit/index.js";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { auditDbFrom, CONFIG_OPTION, DB_OPTION } from "./audit-options.js";
import { formatVerifyReport } from "./audit-output.js";

export const auditVerifyCommand = defineCommand({
  name: "verify",
  summary: "Check the audit log for edited, deleted, inserted, reordered or truncated records",
  usage: "hangar audit verify [--db <path> | --config <file>] [--key <pub>] [--anchor <file>] [--json]",
  description:
    "Recomputes the hash chain and checks every signed checkpoint, then names the first bad\n" +
    "record. Truncation is caught by any signed checkpoint or anchor that vouches for records the\n" +
    "log no longer has. The anchor (the latest checkpoint, kept outside the log) is what catches a\n" +
    "truncation that also deleted the checkpoints: keep a copy of it, and of the public key, where\n" +
    "whoever can write the log cannot. Records after the last checkpoint are protected by the chain\n" +
    "alone; the report says how many there are.",
  options: {
    db: DB_OPTION,
    config: CONFIG_OPTION,
    key: { type: "string", valueName: "<pub>", description: "The trusted public key (default: audit-signing.pub beside the log)." },
    anchor: { type: "string", valueName: "<file>", description: "The anchor file (default: audit.anchor.json beside the log, if present)." },
    unsigned: { type: "boolean", description: "Check the chain only, without a public key. Proves much less." },
    json: { type: "boolean", description: "Print the full report as JSON." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 when the log is intact, 1 when it was tampered with, 2 when it cannot be checked (or on a usage error).",
  async run({ values }, io) {
    const paths = auditPaths(await auditDbFrom(values));
    if (values.unsigned === true && values.key !== undefined) throw usageError("use either --key or --unsigned, not both");
    let publicKey: KeyObject | undefined;
    if (values.unsigned !== true) {
      const keyPath = values.key ?? paths.publicKey;
      if (values.key === undefined && !existsSync(keyPath)) {
        throw usageError(`no public key at ${keyPath}: pass --key <file>, or --unsigned to check the chain alone`);
      }
      publicKey = loadPublicKey(keyPath);
    }
    const anchor: SignedCheckpoint | undefined = values.anchor !== undefined ? readAnchorFile(values.anchor) : readAnchorFile(paths.anchor, { optional: true });
    const report = verifyAuditLog(paths.db, { ...(publicKey !== undefined ? { publicKey } : {}), ...(anchor !== undefined ? { anchor } : {}) });
    if (values.json === true) io.out(`${JSON.stringify({ db: paths.db, ...report }, null, 2)}\n`);
    else io.out(formatVerifyReport(paths.db, report));
    return report.ok ? EXIT_OK : EXIT_FINDING;
  },
});
