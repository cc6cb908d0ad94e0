import type { KeyObject } from "node:crypto";
import { isAuditKind } from "./audit-record.js";
import { canonicalJson } from "./canonical-json.js";
import { checkpointSignatureValid, keyIdOf, type SignedCheckpoint } from "./checkpoint.js";
import { genesisHash, recordHash } from "./hash-chain.js";
import { sortProblems, type VerifyProblem } from "./verify-problem.js";

/**
 * Verification as a pure fold: feed it the log's checkpoints, then its records in seq
 * order, then call finish(). It holds O(checkpoints + window) memory, so a log of any size
 * streams through. The adapter (src/audit/verify-log.ts) reads SQLite; this decides.
 */
export interface RecordRow {
  readonly seq: number;
  readonly ts: unknown;
  readonly kind: unknown;
  readonly data: unknown;
  readonly prevHash: unknown;
  readonly hash: unknown;
}

export interface CheckpointRow {
  readonly seq: unknown;
  readonly ts: unknown;
  readonly hash: unknown;
  readonly keyId: unknown;
  readonly signature: unknown;
}

export interface VerifyOptions {
  readonly logId: string;
  /** Without it, signatures are not checked and the report says so. */
  readonly publicKey?: KeyObject;
  /** The last checkpoint as kept outside the log; see anchor.ts. */
  readonly anchor?: SignedCheckpoint;
}

export interface VerifyReport {
  /** No problems found. Warnings do not clear it or fail it. */
  readonly ok: boolean;
  readonly logId: string;
  readonly records: number;
  readonly lastSeq: number;
  readonly headHash?: string;
  readonly signatures: "checked" | "unchecked";
  readonly checkpoints: { readonly total: number; readonly valid: number };
  /** Highest seq vouched for by a valid checkpoint (or the anchor) whose hash matched; 0 if none. */
  readonly signedThrough: number;
  readonly anchor?: { readonly seq: number; readonly ok: boolean };
  readonly firstProblem?: VerifyProblem;
  /** Sorted by seq; the first is the first bad record. */
  readonly problems: readonly VerifyProblem[];
  readonly warnings: readonly string[];
}

/** Recent hashes remembered to tell an insertion from a plain broken link. */
const LINK_WINDOW = 4096;
const ISO_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

interface PendingCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  readonly source: "checkpoint" | "anchor";
}

export class ChainVerifier {
  private readonly problems: VerifyProblem[] = [];
  private readonly warnings: string[] = [];
  private readonly pending = new Map<number, PendingCheckpoint[]>();
  private readonly recent = new Map<string, number>();
  private readonly expectedKeyId: string | undefined;
  private previous: { seq: number; hash: string } | undefined;
  private count = 0;
  private checkpointTotal = 0;
  private checkpointValid = 0;
  private lastGood = 0;
  /** The first record problem after the last matching checkpoint. */
  private firstChainProblem: number | undefined;
  private signedThrough = 0;
  private anchorStatus: { seq: number; ok: boolean } | undefined;
  private recordsStarted = false;

  constructor(private readonly options: VerifyOptions) {
    this.expectedKeyId = options.publicKey === undefined ? undefined : keyIdOf(options.publicKey);
    if (options.anchor !== undefined) this.addAnchor(options.anchor);
  }

  addCheckpoint(row: CheckpointRow): void {
    if (this.recordsStarted) throw new Error("ChainVerifier: add every checkpoint before the first record");
    this.checkpointTotal++;
    const seq = row.seq;
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1 || typeof row.hash !== "string" || typeof row.ts !== "string" || typeof row.keyId !== "string" || typeof row.signature !== "string") {
      this.problem(typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0 ? seq : 1, "checkpoint-forged", `a checkpoint row is malformed (seq ${String(seq)})`);
      return;
    }
    const checkpoint: SignedCheckpoint = { logId: this.options.logId, seq, hash: row.hash, ts: row.ts, keyId: row.keyId, signature: row.signature };
    if (this.options.publicKey !== undefined && !checkpointSignatureValid(checkpoint, this.options.publicKey)) {
      const why = row.keyId !== this.expectedKeyId ? `it claims key ${row.keyId}, but the trusted key is ${this.expectedKeyId ?? "?"}` : "its content was altered after signing, or it was never signed by this key";
      this.problem(seq, "checkpoint-forged", `checkpoint at record ${seq} (${row.ts}) has an invalid signature: ${why}`);
      return;
    }
    this.checkpointValid++;
    this.expect({ seq, hash: row.hash, ts: row.ts, source: "checkpoint" });
  }

  addRecord(row: RecordRow): void {
    this.recordsStarted = true;
    this.count++;
    const { seq } = row;
    const previous = this.previous;
    const expectedSeq = (previous?.seq ?? 0) + 1;
    if (seq > expectedSeq) {
      const range = seq - expectedSeq === 1 ? `record ${expectedSeq} is` : `records ${expectedSeq}..${seq - 1} are`;
      this.recordProblem(expectedSeq, "missing-record", `${range} missing: the log goes from ${expectedSeq - 1} to ${seq}`);
    } else if (seq < expectedSeq) {
      this.recordProblem(seq, "malformed-record", `record ${seq} appears after record ${expectedSeq - 1}`);
    }
    if (typeof row.hash !== "string" || typeof row.prevHash !== "string" || typeof row.data !== "string" || typeof row.ts !== "string" || !ISO_TS.test(row.ts) || !isAuditKind(row.kind)) {
      this.recordProblem(seq, "malformed-record", `record ${seq} is malformed: ${describeMalformed(row)}`);
      this.advance(seq, typeof row.hash === "string" ? row.hash : "");
      return;
    }
    this.checkLink(seq, row.prevHash, previous);
    let dataJson: string;
    try {
      dataJson = canonicalJson(JSON.parse(row.data));
    } catch {
      this.recordProblem(seq, "malformed-record", `record ${seq} is malformed: its data is not JSON`);
      this.advance(seq, row.hash);
      return;
    }
    if (recordHash({ seq, ts: row.ts, kind: row.kind, dataJson, prevHash: row.prevHash }) !== row.hash) {
      this.recordProblem(seq, "hash-mismatch", `record ${seq} was altered: its content (seq, ts, kind, data or prevHash) does not match its hash`);
    }
    // The hash covers what JSON.parse makes of the text (the last of duplicate keys wins);
    // SQLite's json_extract, or any other reader, may take the first. Only the canonical
    // text reads the same to everyone, and it is the only text the store writes.
    if (dataJson !== row.data) {
      this.recordProblem(seq, "non-canonical-record", `record ${seq} was altered: its stored data is not the canonical text that was hashed (${describeDifference(row.data, dataJson)}); duplicate or reordered keys, whitespace or escapes were added outside Hangar, so other readers may see values the hash does not cover`);
    }
    this.checkVouched(seq, row.hash);
    this.advance(seq, row.hash);
  }

  finish(): VerifyReport {
    const lastSeq = this.previous?.seq ?? 0;
    for (const [seq, list] of this.pending) {
      if (seq <= lastSeq) continue; // a missing record inside the log was already reported
      for (const c of list) {
        const by = c.source === "anchor" ? "the anchor" : `a checkpoint signed ${c.ts}`;
        this.problem(lastSeq + 1, "truncated", `the log was truncated: ${by} vouches for record ${seq}, but the log ends at record ${lastSeq}`);
      }
    }
    if (this.options.publicKey === undefined) this.warnings.push("signatures not checked: no public key given");
    else if (this.checkpointValid === 0 && this.count > 0) this.warnings.push("no valid signed checkpoint: nothing vouches for these records beyond their own chain");
    else if (this.signedThrough < lastSeq) this.warnings.push(`records ${this.signedThrough + 1}..${lastSeq} come after the last signed checkpoint: only their chain protects them`);
    if (this.options.anchor === undefined) this.warnings.push("no anchor: truncation after the last checkpoint kept in the log cannot be detected");
    const problems = sortProblems(this.problems);
    return {
      ok: problems.length === 0,
      logId: this.options.logId,
      records: this.count,
      lastSeq,
      ...(this.previous !== undefined ? { headHash: this.previous.hash } : {}),
      signatures: this.options.publicKey === undefined ? "unchecked" : "checked",
      checkpoints: { total: this.checkpointTotal, valid: this.checkpointValid },
      signedThrough: this.signedThrough,
      ...(this.anchorStatus !== undefined ? { anchor: this.anchorStatus } : {}),
      ...(problems[0] !== undefined ? { firstProblem: problems[0] } : {}),
      problems,
      warnings: this.warnings,
    };
  }

  private addAnchor(anchor: SignedCheckpoint): void {
    const { logId, publicKey } = this.options;
    if (anchor.logId !== logId) {
      this.anchorStatus = { seq: anchor.seq, ok: false };
      this.problem(1, "anchor-invalid", `the anchor belongs to log ${anchor.logId}, not to this log (${logId}): the log was replaced`);
      return;
    }
    if (publicKey !== undefined && !checkpointSignatureValid(anchor, publicKey)) {
      this.anchorStatus = { seq: anchor.seq, ok: false };
      this.problem(Math.max(anchor.seq, 1), "anchor-invalid", `the anchor for record ${anchor.seq} has an invalid signature`);
      return;
    }
    this.anchorStatus = { seq: anchor.seq, ok: true };
    if (anchor.seq > 0) this.expect({ seq: anchor.seq, hash: anchor.hash, ts: anchor.ts, source: "anchor" });
  }

  private expect(c: PendingCheckpoint): void {
    const list = this.pending.get(c.seq);
    if (list === undefined) this.pending.set(c.seq, [c]);
    else list.push(c);
  }

  private checkLink(seq: number, prevHash: string, previous: { seq: number; hash: string } | undefined): void {
    if (previous === undefined) {
      if (seq === 1 && prevHash !== genesisHash(this.options.logId)) {
        this.recordProblem(1, "genesis-mismatch", `record 1 does not start the chain of log ${this.options.logId}: the log id was changed or the record comes from another log`);
      }
      return;
    }
    if (prevHash === previous.hash) return;
    const linkedTo = this.recent.get(prevHash);
    if (linkedTo !== undefined && linkedTo < previous.seq) {
      const range = previous.seq - linkedTo === 1 ? `record ${linkedTo + 1} was` : `records ${linkedTo + 1}..${previous.seq} were`;
      this.recordProblem(linkedTo + 1, "inserted-record", `${range} inserted: record ${seq} links directly to record ${linkedTo}`);
      return;
    }
    this.recordProblem(seq, "broken-link", `the chain breaks between records ${previous.seq} and ${seq}: record ${seq} does not link to record ${previous.seq} (records were removed, moved or inserted here, or one of the two was edited and rehashed)`);
  }

  private checkVouched(seq: number, hash: string): void {
    const list = this.pending.get(seq);
    if (list === undefined) return;
    this.pending.delete(seq);
    for (const c of list) {
      if (c.hash === hash) {
        this.signedThrough = Math.max(this.signedThrough, seq);
        continue;
      }
      const by = c.source === "anchor" ? "the anchor" : `the checkpoint signed ${c.ts}`;
      if (this.firstChainProblem !== undefined) {
        // The chain problems already found explain the mismatch; they name the record more precisely.
        this.problem(this.firstChainProblem, "checkpoint-mismatch", `${by} vouches for a different hash of record ${seq}: the log was changed from record ${this.firstChainProblem} on`);
        continue;
      }
      // Nothing signed after record lastGood vouches for anything in between: any of them may be the rewritten one.
      const from = this.lastGood + 1;
      const span = from === seq ? `record ${seq} was` : `records ${from}..${seq} were`;
      this.problem(from, "checkpoint-mismatch", `${span} rewritten: ${by} vouches for a different hash of record ${seq}`);
    }
    if (list.every((c) => c.hash === hash)) {
      this.lastGood = seq;
      this.firstChainProblem = undefined;
    }
  }

  private advance(seq: number, hash: string): void {
    this.previous = { seq, hash };
    this.recent.set(hash, seq);
    if (this.recent.size > LINK_WINDOW) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }

  private problem(seq: number, code: VerifyProblem["code"], message: string): void {
    this.problems.push({ seq, code, message });
  }

  private recordProblem(seq: number, code: VerifyProblem["code"], message: string): void {
    this.firstChainProblem = Math.min(this.firstChainProblem ?? seq, seq);
    this.problem(seq, code, message);
  }
}

function describeMalformed(row: RecordRow): string {
  if (!isAuditKind(row.kind)) return `unknown kind ${JSON.stringify(row.kind)}`;
  if (typeof row.ts !== "string" || !ISO_TS.test(row.ts)) return `timestamp ${JSON.stringify(row.ts)} is not ISO-8601 UTC`;
  return "a column is missing or has the wrong type";
}

/** Where a stored text first departs from its canonical form, with short excerpts of both. */
function describeDifference(stored: string, canonical: string): string {
  let at = 0;
  while (at < stored.length && at < canonical.length && stored[at] === canonical[at]) at++;
  const excerpt = (text: string): string => {
    const from = Math.max(0, at - 8);
    return `'${from > 0 ? "…" : ""}${printable(text.slice(from, at + 24))}${at + 24 < text.length ? "…" : ""}'`;
  };
  return `from character ${at + 1} it reads ${excerpt(stored)} where the canonical text reads ${excerpt(canonical)}`;
}

// The stored text is the attacker's: no control or bidi character of it may reach a terminal.
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
