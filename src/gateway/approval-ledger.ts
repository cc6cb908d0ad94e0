import { existsSync } from "node:fs";
import { scanAuditLog } from "../audit/read-records.js";
import type { AuditEntry, AuditRecord, PolicyData } from "../core/audit/audit-record.js";
import type { JsonObject } from "../core/audit/canonical-json.js";
import { foldApprovals, MANIFEST_PINNED_ACTION, type Approval } from "../core/gateway/approvals.js";
import type { PinnedManifest } from "../core/gateway/manifest-digest.js";
import type { ApprovalPins } from "../core/gateway/source-pins.js";

/**
 * Approvals read from, and written to, the audit log (see core/gateway/approvals.ts for
 * why the log is their store). Reading folds the approval records and manifest pins;
 * writing is an audit entry like any other.
 */
export function readApprovals(auditPath: string): Map<string, Approval> {
  const read = readApprovalRecords(auditPath);
  return read === undefined ? new Map() : foldApprovals(read.records);
}

/** The records approvals fold from (approvals and manifest pins) after `afterSeq`, and the head of the log they were read from; undefined without a log. */
export function readApprovalRecords(auditPath: string, afterSeq = 0): { logId: string; headSeq: number; records: AuditRecord[] } | undefined {
  if (!existsSync(auditPath)) return undefined;
  const records: AuditRecord[] = [];
  const { logId, headSeq } = scanAuditLog(auditPath, { kinds: ["approval", "policy"], afterSeq }, (record) => {
    if (record.kind === "approval" || (record.data as unknown as PolicyData).action === MANIFEST_PINNED_ACTION) records.push(record);
  });
  return { logId, headSeq, records };
}

/** `policyText`: the validated policy as YAML, kept beside the pins so `approve list --diff` can show its lines. */
export function approvalRequestEntry(id: string, server: string, identity: string, pins: ApprovalPins, policyText?: string): AuditEntry {
  const recorded = { ...pins, ...(policyText !== undefined ? { policyText } : {}) };
  return { kind: "approval", data: { approvalId: id, server, action: "request", identity, pins: recorded as unknown as JsonObject } };
}

/** `tools`: a grant's tools granted despite scan findings, name → the digest granted. */
export function approvalDecisionEntry(approval: Approval, action: "grant" | "deny" | "revoke", identity: string, reason?: string, tools?: Readonly<Record<string, string>>): AuditEntry {
  return {
    kind: "approval",
    data: {
      approvalId: approval.id,
      server: approval.server,
      action,
      identity,
      ...(reason !== undefined ? { reason } : {}),
      pins: approval.pins as unknown as JsonObject,
      ...(tools !== undefined ? { tools: { ...tools } } : {}),
    },
  };
}

/** `flagged`: the tools the manifest scan flagged in the manifest pinned (they stay withheld until granted). */
export function manifestPinnedEntry(approval: Approval, manifest: PinnedManifest, flagged: readonly string[] = []): AuditEntry {
  return {
    kind: "policy",
    data: {
      action: MANIFEST_PINNED_ACTION,
      server: approval.server,
      detail: {
        approvalId: approval.id,
        digest: manifest.digest,
        tools: { ...manifest.tools },
        ...(manifest.prompts !== undefined ? { prompts: { ...manifest.prompts } } : {}),
        ...(manifest.resources !== undefined ? { resources: { ...manifest.resources } } : {}),
        ...(manifest.resourceTemplates !== undefined ? { resourceTemplates: { ...manifest.resourceTemplates } } : {}),
        ...(flagged.length > 0 ? { flagged: [...flagged] } : {}),
      },
    },
  };
}
