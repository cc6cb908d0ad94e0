import type { ApprovalData, AuditRecord, PolicyData } from "../audit/audit-record.js";
import type { PinnedManifest } from "./manifest-digest.js";
import { pinDifferences, type ApprovalPins, type RunPins } from "./source-pins.js";

/**
 * Approvals, as the audit log holds them. The log is the store of record: every step is an
 * `approval` record (request, grant, deny, revoke), and a manifest pinned on first start
 * is a `policy` record ("manifest-pinned"). The current state is a fold over those records,
 * so an approval cannot be edited without breaking the hash chain.
 */
export type ApprovalStatus = "pending" | "granted" | "denied" | "revoked";

export interface Approval {
  readonly id: string;
  readonly server: string;
  readonly status: ApprovalStatus;
  readonly pins: ApprovalPins;
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly decidedBy?: string;
  readonly decidedAt?: string;
  readonly reason?: string;
  /** seq of the record that last changed it: later grants supersede earlier ones. */
  readonly seq: number;
  /** When the manifest was pinned on first start (trust on first use), not at request. */
  readonly manifestPinnedAt?: string;
  /**
   * Tools granted by name despite manifest-scan findings (`approve grant --tools`): tool name
   * → the digest of the tool as it was granted, so a changed tool is not covered.
   */
  readonly grantedTools?: Readonly<Record<string, string>>;
  /** The validated policy as YAML, recorded at request so a reviewer can diff it (older requests lack it). */
  readonly policyText?: string;
}

export const MANIFEST_PINNED_ACTION = "manifest-pinned";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Folds approval and manifest-pinned records (in seq order) into approvals by id. */
export function foldApprovals(records: readonly AuditRecord[]): Map<string, Approval> {
  const byId = new Map<string, Mutable<Approval>>();
  for (const record of records) {
    if (record.kind === "approval") {
      const d = record.data as unknown as ApprovalData;
      const existing = byId.get(d.approvalId);
      if (d.action === "request") {
        if (existing !== undefined || d.pins === undefined) continue;
        const { policyText, ...pins } = d.pins as { policyText?: unknown };
        byId.set(d.approvalId, {
          id: d.approvalId,
          server: d.server,
          status: "pending",
          pins: pins as unknown as ApprovalPins,
          requestedBy: d.identity,
          requestedAt: record.ts,
          seq: record.seq,
          grantedTools: {},
          ...(typeof policyText === "string" ? { policyText } : {}),
        });
        continue;
      }
      if (existing === undefined || existing.server !== d.server) continue;
      if (d.action === "grant" && existing.status === "granted" && d.tools !== undefined) {
        // A later per-tool grant on an approval in force: adds tools, changes nothing else.
        existing.grantedTools = { ...existing.grantedTools, ...toolDigests(d.tools) };
        continue;
      }
      const next: ApprovalStatus | undefined = d.action === "grant" ? "granted" : d.action === "deny" ? "denied" : d.action === "revoke" ? "revoked" : undefined;
      if (next === undefined || !stepAllowed(existing.status, next)) continue;
      existing.status = next;
      existing.decidedBy = d.identity;
      existing.decidedAt = record.ts;
      existing.seq = record.seq;
      if (d.reason !== undefined) existing.reason = d.reason;
      if (next === "granted" && d.tools !== undefined) existing.grantedTools = toolDigests(d.tools);
    } else if (record.kind === "policy") {
      const d = record.data as unknown as PolicyData;
      if (d.action !== MANIFEST_PINNED_ACTION || d.detail === undefined) continue;
      const detail = d.detail as { approvalId?: unknown; digest?: unknown; tools?: unknown; prompts?: unknown; resources?: unknown; resourceTemplates?: unknown };
      const approval = typeof detail.approvalId === "string" ? byId.get(detail.approvalId) : undefined;
      if (approval === undefined || approval.pins.manifest !== undefined || typeof detail.digest !== "string") continue;
      // Pins written before prompts and resources were pinned have none of them: left unchecked.
      const surfaces: Mutable<Pick<PinnedManifest, "prompts" | "resources" | "resourceTemplates">> = {};
      if (detail.prompts !== undefined) surfaces.prompts = toolDigests(detail.prompts);
      if (detail.resources !== undefined) surfaces.resources = toolDigests(detail.resources);
      if (detail.resourceTemplates !== undefined) surfaces.resourceTemplates = toolDigests(detail.resourceTemplates);
      approval.pins = { ...approval.pins, manifest: { digest: detail.digest, tools: (detail.tools ?? {}) as PinnedManifest["tools"], ...surfaces } };
      approval.manifestPinnedAt = record.ts;
    }
  }
  return byId as Map<string, Approval>;
}

/** Only string digests: the log is JSON, and a grant must not widen through a malformed record. */
function toolDigests(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string"));
}

/** Whether the approval's grant covers `tool` exactly as it is now (same digest). */
export function toolGranted(approval: Approval, tool: string, digest: string | undefined): boolean {
  const granted = approval.grantedTools ?? {};
  return digest !== undefined && Object.hasOwn(granted, tool) && granted[tool] === digest;
}

/**
 * Why `granter` may not grant `approval`, or undefined when they may. With
 * `requireDistinctGranter`, whoever requested an approval cannot grant it (nor tools on it):
 * a second person must look. Identities are what the CLI is told (--by), so this guards
 * against a slip, not against someone who can write the audit log anyway.
 */
export function grantRefusal(approval: Approval, granter: string, rules: { readonly requireDistinctGranter: boolean }): string | undefined {
  if (rules.requireDistinctGranter && granter === approval.requestedBy) {
    return `approval ${approval.id} was requested by ${granter}, who may not grant it too (approvals.requireDistinctGranter is true); another identity must grant it`;
  }
  return undefined;
}

/** pending → granted | denied; granted → revoked. Anything else is ignored by the fold and refused by the CLI. */
export function stepAllowed(from: ApprovalStatus, to: ApprovalStatus): boolean {
  return (from === "pending" && (to === "granted" || to === "denied")) || (from === "granted" && to === "revoked");
}

/** The approval in force for `server`: its most recent grant, unless revoked since. */
export function approvalInForce(approvals: Iterable<Approval>, server: string): Approval | undefined {
  let best: Approval | undefined;
  for (const a of approvals) if (a.server === server && a.status === "granted" && (best === undefined || a.seq > best.seq)) best = a;
  return best;
}

export type ApprovalCheck =
  | { readonly status: "approved"; readonly approval: Approval }
  | { readonly status: "unapproved"; readonly pending: readonly Approval[] }
  | { readonly status: "changed"; readonly approval: Approval; readonly differences: readonly string[] };

/** Whether `server`, about to run with `current` pins, is covered by an approval. */
export function checkApproval(approvals: Iterable<Approval>, server: string, current: RunPins): ApprovalCheck {
  const list = [...approvals];
  const approval = approvalInForce(list, server);
  if (approval === undefined) return { status: "unapproved", pending: list.filter((a) => a.server === server && a.status === "pending") };
  const differences = pinDifferences(approval.pins, current);
  return differences.length === 0 ? { status: "approved", approval } : { status: "changed", approval, differences };
}

export function describeApprovalCheck(server: string, check: ApprovalCheck): string {
  switch (check.status) {
    case "approved":
      return `server ${JSON.stringify(server)} is approved (${check.approval.id}, by ${check.approval.decidedBy ?? "?"})`;
    case "unapproved": {
      const pending = check.pending.map((a) => a.id);
      return pending.length > 0
        ? `server ${JSON.stringify(server)} is not approved: request ${pending.join(", ")} is pending; grant it with: hangar approve grant ${pending[pending.length - 1]} --by <identity>`
        : `server ${JSON.stringify(server)} is not approved; request it with: hangar approve request <policy file>`;
    }
    case "changed":
      return `server ${JSON.stringify(server)} changed since its approval ${check.approval.id} (${check.differences.join("; ")}); request a new approval with: hangar approve request <policy file>`;
  }
}
