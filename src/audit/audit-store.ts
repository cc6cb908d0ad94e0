import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import type { Logger } from "pino";
import { isAuditKind, type AuditEntry, type AuditRecord } from "../core/audit/audit-record.js";
import { signCheckpoint, type CheckpointSigner, type SignedCheckpoint } from "../core/audit/checkpoint.js";
import { chainRecord, genesisHash, type ChainHead } from "../core/audit/hash-chain.js";
import { HangarError } from "../core/errors.js";
import { silentLogger } from "../log.js";
import { writeAnchorFile } from "./anchor-file.js";
import { openAuditDatabaseForWriting, type Synchronous } from "./audit-database.js";

/**
 * The append-only, hash-chained audit log. One transaction per append() or appendBatch():
 * a record is either wholly in the log, linked to the one before it, or not in it at all,
 * whatever kills the process. The head is read inside the write lock, so several writers
 * (processes or connections) still build one unbroken chain.
 *
 * Durability: records commit with synchronous=NORMAL by default (WAL): a process crash
 * loses nothing committed, a power loss may lose the last few commits. Every checkpoint
 * commits with synchronous=FULL, which syncs the WAL, so everything a signature vouches
 * for is on disk before the anchor file says so.
 */
export interface AuditStoreOptions {
  readonly path: string;
  /** Signs checkpoints. Without one the log is chained but unsigned. */
  readonly signer?: CheckpointSigner;
  /** Sign a checkpoint once this many records are unsigned, or once the oldest is this old. */
  readonly checkpointEvery?: { readonly records?: number; readonly ms?: number };
  /** Where to keep a copy of the latest checkpoint (see core/audit/anchor.ts). */
  readonly anchorPath?: string;
  readonly synchronous?: Synchronous;
  /** Check the time rule on a timer too, not only on append. Default: true when there is a signer. */
  readonly timer?: boolean;
  readonly now?: () => number;
  readonly newLogId?: () => string;
  readonly logger?: Logger;
}

export const DEFAULT_CHECKPOINT_EVERY = { records: 1000, ms: 60_000 } as const;
const ISO_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface PendingRow {
  readonly ts: string;
  readonly kind: AuditEntry["kind"];
  readonly data: unknown;
}

export class AuditStore implements Disposable {
  readonly path: string;
  readonly logId: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly genesis: ChainHead;
  private readonly every: { records: number; ms: number };
  private readonly appendRows: (rows: readonly PendingRow[]) => AuditRecord[];
  private readonly writeCheckpoint: () => SignedCheckpoint | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly readHead: () => ChainHead;
  private headSeq = 0;
  private lastCheckpoint: { seq: number; at: number };
  private isClosed = false;

  static open(options: AuditStoreOptions): AuditStore {
    return new AuditStore(options);
  }

  private constructor(private readonly options: AuditStoreOptions) {
    this.path = options.path;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger();
    this.every = { ...DEFAULT_CHECKPOINT_EVERY, ...options.checkpointEvery };
    const opened = openAuditDatabaseForWriting(options.path, { synchronous: options.synchronous ?? "normal", newLogId: options.newLogId ?? randomUUID, now: this.now });
    this.db = opened.db;
    this.logId = opened.logId;
    this.genesis = { seq: 0, hash: genesisHash(this.logId) };

    const db = this.db;
    const insertRecord = db.prepare("INSERT INTO records (seq, ts, kind, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)");
    const selectHead = db.prepare("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1");
    const selectLastCheckpoint = db.prepare("SELECT seq, ts FROM checkpoints ORDER BY seq DESC LIMIT 1");
    const insertCheckpoint = db.prepare("INSERT INTO checkpoints (seq, ts, hash, key_id, signature) VALUES (?, ?, ?, ?, ?)");
    const readHead = (): ChainHead => (selectHead.get() as ChainHead | undefined) ?? this.genesis;
    this.readHead = readHead;

    const appendTx = db.transaction((rows: readonly PendingRow[]): AuditRecord[] => {
      let head = readHead();
      const records: AuditRecord[] = [];
      for (const row of rows) {
        const { record, dataJson } = chainRecord(head, row);
        insertRecord.run(record.seq, record.ts, record.kind, dataJson, record.prevHash, record.hash);
        records.push(record);
        head = record;
      }
      return records;
    });
    this.appendRows = (rows) => appendTx.immediate(rows);

    const checkpointTx = db.transaction((signer: CheckpointSigner): SignedCheckpoint | undefined => {
      const head = readHead();
      const last = selectLastCheckpoint.get() as { seq: number } | undefined;
      if (head.seq === 0 || (last !== undefined && last.seq >= head.seq)) return undefined;
      const checkpoint = signCheckpoint({ logId: this.logId, seq: head.seq, hash: head.hash, ts: new Date(this.now()).toISOString() }, signer);
      insertCheckpoint.run(checkpoint.seq, checkpoint.ts, checkpoint.hash, checkpoint.keyId, checkpoint.signature);
      return checkpoint;
    });
    this.writeCheckpoint = () => (options.signer === undefined ? undefined : this.durably(() => checkpointTx.immediate(options.signer as CheckpointSigner)));

    this.headSeq = readHead().seq;
    const last = selectLastCheckpoint.get() as { seq: number; ts: string } | undefined;
    // A log whose last checkpoint is unknown counts as overdue: the first append gets signed.
    this.lastCheckpoint = { seq: last?.seq ?? 0, at: last !== undefined ? Date.parse(last.ts) : Number.NEGATIVE_INFINITY };

    const useTimer = options.timer ?? options.signer !== undefined;
    if (useTimer && options.signer !== undefined && Number.isFinite(this.every.ms)) {
      this.timer = setInterval(() => this.checkpointIfDue(), this.every.ms);
      this.timer.unref();
    }
  }

  /** Appends one record and returns it as stored. Throws HANGAR_AUDIT_INVALID_ENTRY (nothing is written) or HANGAR_CLOSED. */
  append(entry: AuditEntry): AuditRecord {
    const [record] = this.appendBatch([entry]);
    return record as AuditRecord;
  }

  /** Appends all entries in one transaction: all of them or none. */
  appendBatch(entries: readonly AuditEntry[]): AuditRecord[] {
    this.assertOpen();
    if (entries.length === 0) return [];
    const defaultTs = new Date(this.now()).toISOString();
    const rows = entries.map((entry, i): PendingRow => {
      if (!isAuditKind(entry.kind)) throw new HangarError("HANGAR_AUDIT_INVALID_ENTRY", `entry ${i}: unknown kind ${JSON.stringify(entry.kind)}`);
      const ts = entry.ts ?? defaultTs;
      if (!ISO_TS.test(ts)) throw new HangarError("HANGAR_AUDIT_INVALID_ENTRY", `entry ${i}: ts ${JSON.stringify(ts)} is not ISO-8601 UTC with milliseconds (Date#toISOString)`);
      return { ts, kind: entry.kind, data: entry.data };
    });
    const records = this.appendRows(rows);
    this.headSeq = (records[records.length - 1] as AuditRecord).seq;
    this.checkpointIfDue();
    return records;
  }

  /** Signs a checkpoint for the current head now, unless the head is already signed. Returns it, or undefined. */
  checkpoint(): SignedCheckpoint | undefined {
    this.assertOpen();
    const checkpoint = this.writeCheckpoint();
    if (checkpoint === undefined) return undefined;
    this.lastCheckpoint = { seq: checkpoint.seq, at: this.now() };
    if (this.options.anchorPath !== undefined) writeAnchorFile(this.options.anchorPath, checkpoint);
    this.logger.debug({ seq: checkpoint.seq, keyId: checkpoint.keyId }, "audit checkpoint signed");
    return checkpoint;
  }

  /** The chain's tip, as the file holds it now (other writers included); seq 0 for an empty log. */
  head(): ChainHead {
    this.assertOpen();
    return this.readHead();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Signs a final checkpoint (so the whole log is vouched for) and closes. Safe to call twice. */
  close(): void {
    if (this.isClosed) return;
    try {
      this.checkpoint();
    } finally {
      this.shutdown();
    }
  }

  /** Closes without a final checkpoint: the records since the last one stay unsigned. */
  destroy(): void {
    if (!this.isClosed) this.shutdown();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private shutdown(): void {
    this.isClosed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.db.close();
  }

  private checkpointIfDue(): void {
    if (this.isClosed || this.options.signer === undefined) return;
    const unsigned = this.headSeq - this.lastCheckpoint.seq;
    if (unsigned <= 0) return;
    if (unsigned < this.every.records && this.now() - this.lastCheckpoint.at < this.every.ms) return;
    try {
      this.checkpoint();
    } catch (err) {
      // The records are safely in; a failed checkpoint is retried on the next append or tick.
      this.logger.warn({ err, path: this.path }, "audit checkpoint failed");
    }
  }

  /** Runs `fn` with synchronous=FULL, so its commit (and every commit before it) is on disk. */
  private durably<T>(fn: () => T): T {
    if (this.options.synchronous === "full") return fn();
    this.db.pragma("synchronous = FULL");
    try {
      return fn();
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
  }

  private assertOpen(): void {
    if (this.isClosed) throw new HangarError("HANGAR_CLOSED", `the audit log ${this.path} is closed`);
  }
}
