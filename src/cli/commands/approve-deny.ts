import { IDENTITY_PATTERN } from "../../gateway/config/hangar-config-schema.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { decideApproval } from "./approve-decide.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const approveDenyCommand = defineCommand({
  name: "deny",
  summary: "Deny a pending approval, saying why",
  usage: "hangar approve deny <id> --reason <text> [--by <identity>] [--config <file>] [--json]",
  description: "Records the denial and its reason in the audit log. The server stays unapproved.",
  options: {
    config: CONFIG_OPTION,
    reason: { type: "string", valueName: "<text>", description: "Why (required)." },
    by: { type: "string", valueName: "<identity>", description: "Who denies it (default: hangar.yaml's identity)." },
    json: { type: "boolean", description: "Print { id, server, status, by, reason } as JSON." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when denied, 2 when the approval is unknown or not pending, or on a usage error.",
  async run({ values, positionals }, io) {
    if (values.reason === undefined || values.reason.trim() === "") throw usageError("--reason <text> is required: a denial says why");
    if (values.by !== undefined && !IDENTITY_PATTERN.test(values.by)) throw usageError(`--by ${JSON.stringify(values.by)} is not a valid identity`);
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const by = values.by ?? paths.identity;
    const { approval } = decideApproval(paths, positionals[0] as string, "deny", by, { reason: values.reason });
    if (values.json === true) io.out(`${JSON.stringify({ id: approval.id, server: approval.server, status: "denied", by, reason: values.reason }, null, 2)}\n`);
    else io.out(`${approval.id}: denied by ${by} (${values.reason}); server ${approval.server} stays unapproved\n`);
    return EXIT_OK;
  },
});
