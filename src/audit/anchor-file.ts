import { readFileSync } from "node:fs";
import { formatAnchor, MAX_ANCHOR_BYTES, parseAnchor } from "../core/audit/anchor.js";
import type { SignedCheckpoint } from "../core/audit/checkpoint.js";
import { HangarError } from "../core/errors.js";
import { writeFileAtomically } from "./signing-keys.js";

/** The anchor on disk: the last signed checkpoint, replaced atomically after every checkpoint. */
export function writeAnchorFile(path: string, checkpoint: SignedCheckpoint): void {
  writeFileAtomically(path, formatAnchor(checkpoint), 0o644);
}

/** Returns undefined when the file does not exist and `optional` is set. */
export function readAnchorFile(path: string, options: { optional?: boolean } = {}): SignedCheckpoint | undefined {
  let text: string;
  try {
    const buffer = readFileSync(path);
    if (buffer.length > MAX_ANCHOR_BYTES) throw new HangarError("HANGAR_AUDIT_ANCHOR_INVALID", `${path}: larger than ${MAX_ANCHOR_BYTES} bytes; not an anchor file`);
    text = buffer.toString("utf8");
  } catch (err) {
    if (err instanceof HangarError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && options.optional === true) return undefined;
    throw new HangarError("HANGAR_AUDIT_ANCHOR_INVALID", `${path}: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  return parseAnchor(text, path);
}
