import { hash as oneShotHash } from "node:crypto";
import type { AuditKind, AuditRecord } from "./audit-record.js";
import { canonicalJson, type JsonValue } from "./canonical-json.js";

/**
 * The hash chain. Record n commits to record n-1 through `prevHash`, so changing,
 * removing, inserting or moving any record breaks the link after it. The chain starts at
 * a genesis hash derived from the log's random id rather than a fixed constant: records
 * copied from one log into another do not link, and two logs cannot be spliced.
 *
 *   hash(n) = SHA-256( canonical({ data, kind, prevHash, seq, ts, v: 1 }) )    (hex)
 *   prevHash(1) = SHA-256( canonical({ logId, type: "hangar-audit-genesis", v: 1 }) )
 */
export const AUDIT_FORMAT_VERSION = 1 as const;

/** One-shot crypto.hash: about twice as fast as createHash for record-sized input (Node ≥ 20.12). */
export function sha256Hex(text: string): string {
  return oneShotHash("sha256", text, "hex");
}

export function genesisHash(logId: string): string {
  return sha256Hex(canonicalJson({ logId, type: "hangar-audit-genesis", v: AUDIT_FORMAT_VERSION }));
}

export interface RecordFields {
  readonly seq: number;
  readonly ts: string;
  readonly kind: AuditKind | string;
  /** `data` already in canonical form (canonicalJson). */
  readonly dataJson: string;
  readonly prevHash: string;
}

/**
 * The exact text that is hashed: canonicalJson({ data, kind, prevHash, seq, ts, v }),
 * spelt out so the data is serialised once per append, not twice. Keys are in sorted order.
 */
export function recordPreimage(r: RecordFields): string {
  return `{"data":${r.dataJson},"kind":${JSON.stringify(r.kind)},"prevHash":${JSON.stringify(r.prevHash)},"seq":${r.seq},"ts":${JSON.stringify(r.ts)},"v":${AUDIT_FORMAT_VERSION}}`;
}

export function recordHash(r: RecordFields): string {
  return sha256Hex(recordPreimage(r));
}

/** The chain's tip: what the next record links to. seq 0 is an empty log. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export interface ChainedRecord {
  readonly record: AuditRecord;
  /** The canonical text of `record.data`, as stored. */
  readonly dataJson: string;
}

/** Links one entry after `head`. Throws HANGAR_AUDIT_INVALID_ENTRY when `data` is not plain JSON. */
export function chainRecord(head: ChainHead, entry: { readonly ts: string; readonly kind: AuditKind; readonly data: unknown }): ChainedRecord {
  const dataJson = canonicalJson(entry.data);
  const seq = head.seq + 1;
  const hash = recordHash({ seq, ts: entry.ts, kind: entry.kind, dataJson, prevHash: head.hash });
  return { record: storedRecord({ seq, ts: entry.ts, kind: entry.kind, prevHash: head.hash, hash }, dataJson), dataJson };
}

/**
 * A record whose `data` is parsed from its stored text on first read: the record handed
 * back by an append is exactly what the log holds, and appends that ignore it (most do)
 * do not pay for a parse.
 */
export function storedRecord(fields: Omit<AuditRecord, "data">, dataJson: string): AuditRecord {
  let data: JsonValue | undefined;
  return {
    seq: fields.seq,
    ts: fields.ts,
    kind: fields.kind,
    get data(): JsonValue {
      return (data ??= JSON.parse(dataJson) as JsonValue);
    },
    prevHash: fields.prevHash,
    hash: fields.hash,
  };
}
