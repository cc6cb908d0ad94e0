import { HangarError } from "../../core/errors.js";
import { stepAllowed, type Approval, type ApprovalStatus } from "../../core/gateway/approvals.js";
import { approvalDecisionEntry, readApprovals } from "../../gateway/approval-ledger.js";
import type { HangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { openAuditForCli } from "./gateway-options.js";

/** The shared step of grant and deny: check the approval may move, then append the decision. */
export function decideApproval(paths: HangarConfigPaths, id: string, action: "grant" | "deny", identity: string, reason?: string): Approval {
  const approval = readApprovals(paths.auditPath).get(id);
  if (approval === undefined) throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", `no approval ${JSON.stringify(id)} in ${paths.auditPath}; see hangar approve list`, { data: { id } });
  const to: ApprovalStatus = action === "grant" ? "granted" : "denied";
  if (!stepAllowed(approval.status, to)) {
    throw new HangarError("HANGAR_GATEWAY_APPROVAL_INVALID", `approval ${id} is ${approval.status}${approval.decidedBy !== undefined ? ` (by ${approval.decidedBy})` : ""}; only a pending approval can be ${to}`, { data: { id, status: approval.status } });
  }
  const store = openAuditForCli(paths.auditPath);
  try {
    store.append(approvalDecisionEntry(approval, action, identity, reason));
  } finally {
    store.close();
  }
  return approval;
}
