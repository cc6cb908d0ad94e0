import * as z from "zod";
import { HangarError } from "../errors.js";
import type { SignedCheckpoint } from "./checkpoint.js";

/**
 * The anchor: the latest signed checkpoint, kept outside the log. Truncating the tail of
 * a log *and* deleting its checkpoints leaves a shorter log that is internally perfect;
 * only a copy of a later checkpoint held somewhere else can show that records are missing.
 * The store rewrites the anchor after every checkpoint; ship it off the host (or just
 * keep it out of reach of whoever can write the database) for it to mean anything.
 */
export const ANCHOR_TYPE = "hangar-audit-anchor" as const;

/** An anchor file is a few hundred bytes; refuse to parse anything much larger. */
export const MAX_ANCHOR_BYTES = 4096;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

const anchorSchema = z.strictObject({
  type: z.literal(ANCHOR_TYPE),
  v: z.literal(1),
  logId: z.string().min(1).max(200),
  seq: z.number().int().min(0),
  hash: hex64,
  ts: z.string().min(1).max(64),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  signature: z.string().min(1).max(200),
});

export function formatAnchor(checkpoint: SignedCheckpoint): string {
  const { logId, seq, hash, ts, keyId, signature } = checkpoint;
  return `${JSON.stringify({ type: ANCHOR_TYPE, v: 1, logId, seq, hash, ts, keyId, signature }, null, 2)}\n`;
}

/** Throws HANGAR_AUDIT_ANCHOR_INVALID with every problem when `text` is not an anchor. */
export function parseAnchor(text: string, source = "anchor"): SignedCheckpoint {
  if (text.length > MAX_ANCHOR_BYTES) throw new HangarError("HANGAR_AUDIT_ANCHOR_INVALID", `${source}: larger than ${MAX_ANCHOR_BYTES} bytes; not an anchor file`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_ANCHOR_INVALID", `${source}: not JSON`, { cause: err });
  }
  const parsed = anchorSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new HangarError("HANGAR_AUDIT_ANCHOR_INVALID", `${source}: ${issues.join("; ")}`, { data: { issues } });
  }
  const { logId, seq, hash, ts, keyId, signature } = parsed.data;
  return { logId, seq, hash, ts, keyId, signature };
}
