import { silentLogger } from "../../log.js";
import { approvalInForce } from "../../core/gateway/approvals.js";
import { diffApproval, formatApprovalDiff } from "../../gateway/approval-diff.js";
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
  usage: "hangar approve list [--config <file>] [--server <name>] [--diff] [--json]",
  description:
    "Reads every approval step from the audit log (the approvals' store of record) and shows each approval's state and pins,\n" +
    "and what the manifest scan flagged in its manifest (hidden Unicode, instructions to the model, URLs, shell fragments,\n" +
    "references to other servers' tools, shadowed tool names), each flagged tool marked granted or not.",
  options: {
    config: CONFIG_OPTION,
    server: { type: "string", valueName: "<name>", description: "Only approvals of this server." },
    diff: { type: "boolean", description: "Show, for each pending approval (or each, with --server), what changed since its server's last grant: source, command, policy lines, tools." },
    json: { type: "boolean", description: "Print { approvals } as JSON, each with its pins, inForce and scan (and diff, with --diff)." },
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
    const everyApproval = [...readApprovals(paths.auditPath).values()];
    const diffed = values.diff !== true ? [] : all.filter((a) => values.server !== undefined || a.status === "pending");
    const diffs = new Map(diffed.map((a) => [a.id, diffApproval(everyApproval, a)]));
    if (values.json === true) {
      const approvals = all.map(({ policyText: _text, ...a }) => ({ ...a, inForce: inForce.has(a.id), scan: reviews.get(a.id), ...(diffs.has(a.id) ? { diff: diffs.get(a.id) } : {}) }));
      io.out(`${JSON.stringify({ approvals }, null, 2)}\n`);
    } else {
      io.out(formatApprovals(all, inForce, reviews));
      for (const diff of diffs.values()) io.out(`\n${formatApprovalDiff(diff)}`);
    }
    return EXIT_OK;
  },
});
