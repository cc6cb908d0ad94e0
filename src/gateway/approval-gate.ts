import type { Logger } from "pino";
import type { AuditRecord } from "../core/audit/audit-record.js";
import { checkApproval, foldApprovals, type Approval, type ApprovalCheck } from "../core/gateway/approvals.js";
import type { PinnedManifest } from "../core/gateway/manifest-digest.js";
import type { RunPins } from "../core/gateway/source-pins.js";
import { manifestPinnedEntry, readApprovalRecords } from "./approval-ledger.js";
import type { AuditWriter } from "./audit-writer.js";

/**
 * The gateway's view of approvals: read from the audit log, cached for `ttlMs` so a
 * busy tools/list does not query SQLite each time, and re-read at most that late after
 * `hangar approve grant` (no restart of the gateway needed).
 */
export class ApprovalGate {
  private cache: { at: number; approvals: Map<string, Approval> } | undefined;
  /** The approval records read so far, and up to where: each re-read scans only what was appended since. */
  private ledger: { logId: string; headSeq: number; records: AuditRecord[] } | undefined;
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
      approvals = this.readApprovals();
    } catch (err) {
      // Fail closed: an unreadable log approves nothing.
      this.logger.error({ err }, "cannot read approvals from the audit log; treating every server as unapproved");
      approvals = new Map();
    }
    this.cache = { at: now, approvals };
    return approvals;
  }

  /**
   * The log holds every call's record, so reading it whole each time grew with its size (45 ms
   * at 100k records, every second). Approval records are few: they are kept, and only records
   * after the last head read are scanned. Another log at the path (a new id, or a head behind
   * the one read) is read from the start.
   */
  private readApprovals(): Map<string, Approval> {
    const known = this.ledger;
    const read = readApprovalRecords(this.audit.path, known?.headSeq ?? 0);
    if (read === undefined) {
      this.ledger = undefined;
      return new Map();
    }
    if (known !== undefined && (read.logId !== known.logId || read.headSeq < known.headSeq)) {
      this.ledger = undefined;
      return this.readApprovals();
    }
    const records = known === undefined ? read.records : [...known.records, ...read.records];
    this.ledger = { logId: read.logId, headSeq: read.headSeq, records };
    return foldApprovals(records);
  }
}
