import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { resolve } from "node:path";
import { silentLogger } from "../../log.js";
import { pinManifest, SURFACE_KINDS, surfaceKey, type PinnedManifest } from "../../core/gateway/manifest-digest.js";
import { describeSource, runPins, type ApprovalPins } from "../../core/gateway/source-pins.js";
import { approvalRequestEntry, readApprovals } from "../../gateway/approval-ledger.js";
import { reviewApprovals } from "../../gateway/approval-review.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { ManifestCache } from "../../gateway/manifest-cache.js";
import { formatIssues, loadPolicyFile } from "../../policy/index.js";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { quarantineManifest } from "./approve-quarantine.js";
import { CONFIG_OPTION, DEFAULT_CONFIG, openAuditForCli } from "./gateway-options.js";

export const approveRequestCommand = defineCommand({
  name: "request",
  summary: "Ask for a server to be approved, pinning what it runs",
  usage: "hangar approve request <policy> [--quarantine] [--config <file>] [--by <identity>] [--json]",
  description:
    "Records a pending approval for the policy's server in the audit log. It pins the source\n" +
    "(npm version and integrity, or image digest), the command, a digest of the whole policy,\n" +
    "and the tool manifest when it is known (cached from an earlier run); otherwise the\n" +
    "manifest is pinned at the first start after the grant. Any later change needs a new approval.\n" +
    "With --quarantine the server is started once in quarantine (deny all, capture: nothing leaves),\n" +
    "its tools, prompts, resources and resource templates are listed and scanned, and the request pins that\n" +
    "manifest: a server that shows another one at its first real start is withheld (ENFORCING) as a rug pull would be.",
  options: {
    config: CONFIG_OPTION,
    by: { type: "string", valueName: "<identity>", description: "Who asks (default: hangar.yaml's identity)." },
    quarantine: { type: "boolean", description: "Start the server in quarantine first, to list, scan and pin its manifest (tools, prompts, resources)." },
    json: { type: "boolean", description: "Print { id, server, status, requestedBy, pins, scan } as JSON." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when recorded, 1 when the policy is invalid or the quarantined server showed no manifest, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const file = positionals[0] as string;
    const loaded = await loadPolicyFile(resolve(file), { displayName: file });
    if (!loaded.ok) {
      io.err(formatIssues(loaded.issues));
      return EXIT_FINDING;
    }
    const server = loaded.policy.name;
    const cache = new ManifestCache(paths.manifests, silentLogger());
    if (values.quarantine === true) {
      const seen = await quarantineManifest(loaded.policy, resolve(file), values.config ?? DEFAULT_CONFIG, io);
      if (seen === undefined) return EXIT_FINDING;
      await cache.write(server, seen.manifest, new Date().toISOString());
      const { tools, prompts, resources, resourceTemplates } = seen.manifest;
      io.err(
        `hangar: ${server} listed ${tools.length} tools in quarantine; ${seen.attempts} network attempts captured at start, none left the sandbox; ` +
          `it also listed ${prompts.length} prompts, ${resources.length} resources and ${resourceTemplates.length} resource templates\n`,
      );
    }
    const cached = await cache.read(server);
    const pins: ApprovalPins = { ...runPins(loaded.policy), ...(cached !== undefined ? { manifest: pinManifest(cached.tools, cached) } : {}) };
    const id = `apr-${randomBytes(4).toString("hex")}`;
    const store = openAuditForCli(paths.auditPath);
    try {
      store.append(approvalRequestEntry(id, server, values.by ?? paths.identity, pins, stringify(loaded.policy)));
    } finally {
      store.close();
    }
    const approval = readApprovals(paths.auditPath).get(id);
    const review = approval !== undefined ? (await reviewApprovals([approval], cache)).get(id) : undefined;
    if (values.json === true) {
      io.out(`${JSON.stringify({ id, server, status: "pending", requestedBy: values.by ?? paths.identity, pins, scan: review }, null, 2)}\n`);
      return EXIT_OK;
    }
    const scan =
      review === undefined || review.manifest === "unknown" || review.manifest === "stale"
        ? "at the first start"
        : review.flagged.length === 0
          ? "nothing flagged"
          : `${review.flagged.length} ${review.flagged.some(isSurfaceKey) ? "item" : "tool"}${review.flagged.length === 1 ? "" : "s"} flagged (${review.flagged.join(", ")}): withheld until granted with --tools; see hangar approve list --server ${server}`;
    io.out(
      `${id}: approval requested for server ${server}\n` +
        `  source    ${describeSource(pins.source)}\n` +
        `  policy    sha256 ${pins.policyDigest}\n` +
        `  manifest  ${pins.manifest !== undefined ? `sha256 ${pins.manifest.digest} (${Object.keys(pins.manifest.tools).length} tools, from ${cached?.fetchedAt ?? "cache"})` : "not known yet: pinned at the first start after the grant"}\n` +
        `  scan      ${scan}\n` +
        (pins.manifest !== undefined ? `  tools     ${Object.keys(pins.manifest.tools).sort().join(", ")}\n` : "") +
        surfaceLines(pins.manifest) +
        `grant it with: hangar approve grant ${id} --by <identity>\n`,
    );
    return EXIT_OK;
  },
});

/** The prompts, resources and templates a pin covers, one line each kind (none for tools-only pins). */
function surfaceLines(pin: PinnedManifest | undefined): string {
  if (pin === undefined) return "";
  const line = (label: string, map: Readonly<Record<string, string>> | undefined): string => (map === undefined || Object.keys(map).length === 0 ? "" : `  ${label.padEnd(9)} ${Object.keys(map).sort().join(", ")}\n`);
  return line("prompts", pin.prompts) + line("resources", pin.resources) + line("templates", pin.resourceTemplates);
}

/** `prompt:greet`, `resource:…`: a flagged item that is not a tool. */
const isSurfaceKey = (name: string): boolean => SURFACE_KINDS.some((kind) => name.startsWith(surfaceKey(kind, "")));
