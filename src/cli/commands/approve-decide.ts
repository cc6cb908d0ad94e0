import { HangarError } from "../../core/errors.js";
import { approvalInForce, grantRefusal, stepAllowed, type Approval, type ApprovalStatus } from "../../core/gateway/approvals.js";
import { pinManifest, pinnedSurfaces, type PinnedManifest } from "../../core/gateway/manifest-digest.js";
import { approvalDecisionEntry, readApprovals } from "../../gateway/approval-ledger.js";
import type { HangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import type { CachedManifest } from "../../gateway/manifest-cache.js";
import { openAuditForCli } from "./gateway-options.js";

export interface Decision {
  readonly approval: Approval;
  /** A per-tool grant on an approval already in force: only tools were added. */
  readonly toolsOnly: boolean;
  /** Tools granted by this decision, name → digest. */
  readonly tools: Readonly<Record<string, string>>;
}

/**
 * The shared step of grant and deny: check the approval may move, then append the decision.
 * `tools` (grant only) names tools granted despite manifest-scan findings; each is bound to
 * its digest in the pinned manifest, or in `cached` when nothing is pinned yet (what the
 * reviewer saw), so a tool that differs at first start is not covered.
 */
export function decideApproval(
  paths: HangarConfigPaths,
  id: string,
  action: "grant" | "deny",
  identity: string,
  options: { reason?: string; tools?: readonly string[]; cached?: CachedManifest } = {},
): Decision {
  const approvals = readApprovals(paths.auditPath);
  const approval = approvals.get(id);
  if (approval === undefined) throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", `no approval ${JSON.stringify(id)} in ${paths.auditPath}; see hangar approve list`, { data: { id } });
  const to: ApprovalStatus = action === "grant" ? "granted" : "denied";
  const toolsOnly = action === "grant" && options.tools !== undefined && approval.status === "granted";
  if (toolsOnly && approvalInForce(approvals.values(), approval.server)?.id !== approval.id) {
    throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", `approval ${id} is no longer in force for server ${approval.server}; grant tools on the approval in force (see hangar approve list)`, { data: { id, status: approval.status } });
  }
  if (!toolsOnly && !stepAllowed(approval.status, to)) {
    throw new HangarError(
      "HANGAR_GATEWAY_APPROVAL_INVALID",
      `approval ${id} is ${approval.status}${approval.decidedBy !== undefined ? ` (by ${approval.decidedBy})` : ""}; only a pending approval can be ${to}`,
      { data: { id, status: approval.status } },
    );
  }
  const refusal = action === "grant" ? grantRefusal(approval, identity, paths) : undefined;
  if (refusal !== undefined) throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", refusal, { data: { id, identity } });
  const tools = options.tools === undefined ? undefined : toolDigests(approval, options.tools, options.cached);
  const store = openAuditForCli(paths.auditPath);
  try {
    store.append(approvalDecisionEntry(approval, action, identity, options.reason, tools));
  } finally {
    store.close();
  }
  return { approval, toolsOnly, tools: tools ?? {} };
}

function toolDigests(approval: Approval, names: readonly string[], cached: CachedManifest | undefined): Record<string, string> {
  const pinned = approval.pins.manifest;
  // Prompts, resources and templates are granted by surface key (prompt:<name>) beside tools.
  const pin = pinned ?? (cached !== undefined ? pinManifest(cached.tools, cached) : undefined);
  const known = pin === undefined ? undefined : { ...pin.tools, ...pinnedSurfaces(pin) };
  if (known === undefined) {
    throw new HangarError(
      "HANGAR_GATEWAY_APPROVAL_INVALID",
      `the tool manifest of server ${approval.server} is not known yet, so no tool can be granted by name; grant the server without --tools, let it start once (its manifest is pinned then), review it with hangar approve list, then grant tools`,
      { data: { id: approval.id } },
    );
  }
  const out: Record<string, string> = {};
  for (const name of names) {
    const digest = Object.hasOwn(known, name) ? known[name] : undefined;
    if (digest === undefined) {
      throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", `server ${approval.server} has no tool ${JSON.stringify(name)} in the manifest ${pinned !== undefined ? "its approval pinned" : "cached"}; its tools: ${Object.keys(pin?.tools ?? {}).sort().join(", ")}${surfaceList(pin)}`, {
        data: { id: approval.id, tool: name },
      });
    }
    out[name] = digest;
  }
  return out;
}

function surfaceList(pin: PinnedManifest | undefined): string {
  const keys = Object.keys((pin !== undefined ? pinnedSurfaces(pin) : undefined) ?? {}).sort();
  return keys.length > 0 ? `; its prompts and resources (granted by these names): ${keys.join(", ")}` : "";
}
