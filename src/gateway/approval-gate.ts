import type { Logger } from "pino";
import { checkApproval, type Approval, type ApprovalCheck } from "../core/gateway/approvals.js";
import type { PinnedManifest } from "../core/gateway/manifest-digest.js";
import type { RunPins } from "../core/gateway/source-pins.js";
import { manifestPinnedEntry, readApprovals } from "./approval-ledger.js";
import type { AuditWriter } from "./audit-writer.js";

/**
 * The gateway's view of approvals: read from the audit log, cached for `ttlMs` so a
 * busy tools/list does not query SQLite each time, and re-read at most that late after
 * `hangar approve grant` (no restart of the gateway needed).
 */
export class ApprovalGate {
  private cache: { at: number; approvals: Map<string, Approval> } | undefined;
  private readonly checks = new Map<string, { approvals: Map<string, Approval>; check: ApprovalCheck }>();

  constructor(
    private readonly audit: AuditWriter,
    private readonly now: () => number,
    private readonly logger: Logger,
    private readonly ttlMs = 1000,
  ) {}

  /** The server's approval status; recomputed only when the approvals were re-read (a server's pins are fixed). */
  check(server: string, pins: RunPins): ApprovalCheck {
    const approvals = this.approvals();
    const cached = this.checks.get(server);
    if (cached !== undefined && cached.approvals === approvals) return cached.check;
    const check = checkApproval(approvals.values(), server, pins);
    this.checks.set(server, { approvals, check });
    return check;
  }

  /** Trust on first use: pins the manifest seen at the first start after a grant that had none. */
  pinManifest(approval: Approval, manifest: PinnedManifest, flagged: readonly string[] = []): void {
    this.audit.write(manifestPinnedEntry(approval, manifest, flagged));
    this.audit.flush();
    this.cache = undefined;
  }

  invalidate(): void {
    this.cache = undefined;
  }

  private approvals(): Map<string, Approval> {
    const now = this.now();
    if (this.cache !== undefined && now - this.cache.at < this.ttlMs) return this.cache.approvals;
    let approvals: Map<string, Approval>;
    try {
      // Our own unflushed entries (a pin just written) must be visible to the read.
      this.audit.flush();
      approvals = readApprovals(this.audit.path);
    } catch (err) {
      // Fail closed: an unreadable log approves nothing.
      this.logger.error({ err }, "cannot read approvals from the audit log; treating every server as unapproved");
      approvals = new Map();
    }
    this.cache = { at: now, approvals };
    return approvals;
  }
}
