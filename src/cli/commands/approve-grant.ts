import { silentLogger } from "../../log.js";
import { IDENTITY_PATTERN } from "../../gateway/config/hangar-config-schema.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { readApprovals } from "../../gateway/approval-ledger.js";
import { reviewApprovals } from "../../gateway/approval-review.js";
import { ManifestCache } from "../../gateway/manifest-cache.js";
import { EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { decideApproval } from "./approve-decide.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const approveGrantCommand = defineCommand({
  name: "grant",
  summary: "Grant a pending approval: the server may start",
  usage: "hangar approve grant <id> --by <identity> [--tools <a,b>] [--config <file>] [--json]",
  description:
    "Records the grant in the audit log. A running gateway picks it up within a second; the server starts on its next call.\n" +
    "Tools the manifest scan flagged (see hangar approve list) stay withheld under ENFORCING until a grant names\n" +
    "them with --tools; each is granted as it is now (its digest), so a later change is not covered. --tools also\n" +
    "adds tools to an approval already granted and in force.",
  options: {
    config: CONFIG_OPTION,
    by: { type: "string", valueName: "<identity>", description: "Who grants it (required)." },
    tools: { type: "string", valueName: "<a,b>", description: "Flagged tools to grant too, by the server's own names, comma-separated; prompts and resources as prompt:<name>, resource:<uri>, resourceTemplate:<template>." },
    json: { type: "boolean", description: "Print { id, server, status, by, toolsOnly, tools, withheld } as JSON." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when granted, 2 when the approval is unknown, not pending (nor in force, with --tools), a tool is unknown, or on a usage error.",
  async run({ values, positionals }, io) {
    if (values.by === undefined) throw usageError("--by <identity> is required: a grant names who granted it");
    if (!IDENTITY_PATTERN.test(values.by)) throw usageError(`--by ${JSON.stringify(values.by)} is not a valid identity`);
    const tools = values.tools === undefined ? undefined : [...new Set(values.tools.split(",").map((t) => t.trim()))];
    if (tools !== undefined && (tools.length === 0 || tools.includes(""))) throw usageError(`--tools ${JSON.stringify(values.tools)} names no tool; write --tools a,b`);
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const id = positionals[0] as string;
    const cache = new ManifestCache(paths.manifests, silentLogger());
    const server = readApprovals(paths.auditPath).get(id)?.server;
    const cached = server !== undefined ? await cache.read(server) : undefined;
    const decision = decideApproval(paths, id, "grant", values.by, { ...(tools !== undefined ? { tools } : {}), ...(cached !== undefined ? { cached } : {}) });
    const { approval } = decision;
    const granted = Object.keys(decision.tools);
    const after = readApprovals(paths.auditPath).get(approval.id);
    const review = after !== undefined ? (await reviewApprovals([after], cache)).get(after.id) : undefined;
    const withheld = review?.ungranted ?? [];
    if (values.json === true) {
      io.out(`${JSON.stringify({ id: approval.id, server: approval.server, status: "granted", by: values.by, toolsOnly: decision.toolsOnly, tools: decision.tools, withheld }, null, 2)}\n`);
      return EXIT_OK;
    }
    io.out(
      decision.toolsOnly
        ? `${approval.id}: tools granted by ${values.by} on server ${approval.server}: ${granted.join(", ")}\n`
        : `${approval.id}: granted by ${values.by}; server ${approval.server} may start\n${granted.length > 0 ? `  tools granted despite scan findings: ${granted.join(", ")}\n` : ""}`,
    );
    if (withheld.length > 0) {
      io.out(`  withheld until granted per tool (ENFORCING): ${withheld.join(", ")}; see hangar approve list --server ${approval.server}\n`);
    }
    return EXIT_OK;
  },
});
