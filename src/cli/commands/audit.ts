import { defineGroup } from "../define-command.js";
import { auditExportCommand } from "./audit-export.js";
import { auditQueryCommand } from "./audit-query.js";
import { auditVerifyCommand } from "./audit-verify.js";

export const auditCommand = defineGroup({
  name: "audit",
  summary: "Verify, query and export the tamper-evident audit log",
  usage: "hangar audit <command> [options]",
  description:
    "The audit log records every tool call, egress event, lifecycle change, approval and policy\n" +
    "event in a hash chain with ed25519-signed checkpoints (see 'hangar init').",
  commands: [auditVerifyCommand, auditQueryCommand, auditExportCommand],
});
