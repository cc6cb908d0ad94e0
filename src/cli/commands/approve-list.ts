import { silentLogger } from "../../log.js";
import { approvalInForce } from "../../core/gateway/approvals.js";
import { readApprovals } from "../../gateway/approval-ledger.js";
import { reviewApprovals } from "../../gateway/approval-review.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { formatApprovals } from "../../gateway/format-status.js";
import { ManifestCache } from "../../gateway/manifest-cache.js";
import { EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const approveListCommand = defineCommand({
  name: "list",
  summary: "List approvals: pending, granted (in force or superseded), denied, with the manifest scan's findings",
  usage: "hangar approve list [--config <file>] [--server <name>] [--json]",
  description:
    "Reads every approval step from the audit log (the approvals' store of record) and shows each approval's state and pins,\n" +
    "and what the manifest scan flagged in its manifest (hidden Unicode, instructions to the model, URLs, shell fragments,\n" +
    "references to other servers' tools, shadowed tool names), each flagged tool marked granted or not.",
  options: {
    config: CONFIG_OPTION,
    server: { type: "string", valueName: "<name>", description: "Only approvals of this server." },
    json: { type: "boolean", description: "Print { approvals } as JSON, each with its pins, inForce and scan." },
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
    const reviews = await reviewApprovals(all, new ManifestCache(paths.manifests, silentLogger()));
    if (values.json === true) io.out(`${JSON.stringify({ approvals: all.map((a) => ({ ...a, inForce: inForce.has(a.id), scan: reviews.get(a.id) })) }, null, 2)}\n`);
    else io.out(formatApprovals(all, inForce, reviews));
    return EXIT_OK;
  },
});
