import { approvalInForce } from "../../core/gateway/approvals.js";
import { readApprovals } from "../../gateway/approval-ledger.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { formatApprovals } from "../../gateway/format-status.js";
import { EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const approveListCommand = defineCommand({
  name: "list",
  summary: "List approvals: pending, granted (in force or superseded), denied",
  usage: "hangar approve list [--config <file>] [--server <name>] [--json]",
  description: "Reads every approval step from the audit log (the approvals' store of record) and shows each approval's state and pins.",
  options: {
    config: CONFIG_OPTION,
    server: { type: "string", valueName: "<name>", description: "Only approvals of this server." },
    json: { type: "boolean", description: "Print { approvals } as JSON, each with its pins and inForce." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0, or 2 when the audit log cannot be read or on a usage error.",
  async run({ values }, io) {
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const all = [...readApprovals(paths.auditPath).values()].filter((a) => values.server === undefined || a.server === values.server);
    const inForce = new Set(
      [...new Set(all.map((a) => a.server))].flatMap((server) => {
        const a = approvalInForce(all, server);
        return a !== undefined ? [a.id] : [];
      }),
    );
    if (values.json === true) io.out(`${JSON.stringify({ approvals: all.map((a) => ({ ...a, inForce: inForce.has(a.id) })) }, null, 2)}\n`);
    else io.out(formatApprovals(all, inForce));
    return EXIT_OK;
  },
});
