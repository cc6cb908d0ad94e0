/**
 * What `verify` can find wrong with a log. Every problem names the first record it
 * implicates (`seq`), so the earliest problem is the first bad record.
 */
export type VerifyProblemCode =
  /** The record's content does not match its own hash: it was edited in place. */
  | "hash-mismatch"
  /** The record does not link to the one before it: records were removed, moved, or one side was edited and rehashed. */
  | "broken-link"
  /** The next record links past this one: this record (and any after it up to the link) was inserted. */
  | "inserted-record"
  /** A seq number is absent: the record was deleted. */
  | "missing-record"
  /** Record 1 does not start this log's chain: the log id was changed or records were spliced in from elsewhere. */
  | "genesis-mismatch"
  /** A record's columns are not what the writer stores (unknown kind, bad timestamp, data not JSON, seq out of range). */
  | "malformed-record"
  /** A record's stored data is not byte for byte the canonical text that was hashed (duplicate or reordered keys, whitespace, escapes). */
  | "non-canonical-record"
  /** A checkpoint's signature does not verify: it was forged, altered, or signed by another key. */
  | "checkpoint-forged"
  /** A validly signed checkpoint vouches for a different hash: the chain was rewritten up to it. */
  | "checkpoint-mismatch"
  /** A signed checkpoint or the anchor vouches for records the log no longer has. */
  | "truncated"
  /** The anchor file belongs to another log, or its signature does not verify. */
  | "anchor-invalid";

export interface VerifyProblem {
  /** The first record the problem implicates. */
  readonly seq: number;
  readonly code: VerifyProblemCode;
  readonly message: string;
}

// At one seq, what is wrong with the record itself comes before what a checkpoint says about it.
const RANK: Readonly<Record<VerifyProblemCode, number>> = {
  "missing-record": 0,
  "genesis-mismatch": 0,
  "inserted-record": 0,
  "broken-link": 1,
  "hash-mismatch": 1,
  "malformed-record": 1,
  "non-canonical-record": 1,
  "checkpoint-mismatch": 2,
  truncated: 2,
  "checkpoint-forged": 3,
  "anchor-invalid": 3,
};

/** Sort problems so the first one is the earliest record; ties go by RANK, then order of discovery. */
export function sortProblems(problems: readonly VerifyProblem[]): VerifyProblem[] {
  return problems
    .map((p, i) => [p, i] as const)
    .sort(([a, i], [b, j]) => a.seq - b.seq || RANK[a.code] - RANK[b.code] || i - j)
    .map(([p]) => p);
}
