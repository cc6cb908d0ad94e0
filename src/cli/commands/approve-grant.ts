import { IDENTITY_PATTERN } from "../../gateway/config/hangar-config-schema.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { decideApproval } from "./approve-decide.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const approveGrantCommand = defineCommand({
  name: "grant",
  summary: "Grant a pending approval: the server may start",
  usage: "hangar approve grant <id> --by <identity> [--config <file>]",
  description: "Records the grant in the audit log. A running gateway picks it up within a second; the server starts on its next call.",
  options: {
    config: CONFIG_OPTION,
    by: { type: "string", valueName: "<identity>", description: "Who grants it (required)." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when granted, 2 when the approval is unknown or not pending, or on a usage error.",
  async run({ values, positionals }, io) {
    if (values.by === undefined) throw usageError("--by <identity> is required: a grant names who granted it");
    if (!IDENTITY_PATTERN.test(values.by)) throw usageError(`--by ${JSON.stringify(values.by)} is not a valid identity`);
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const approval = decideApproval(paths, positionals[0] as string, "grant", values.by);
    io.out(`${approval.id}: granted by ${values.by}; server ${approval.server} may start\n`);
    return EXIT_OK;
  },
});
