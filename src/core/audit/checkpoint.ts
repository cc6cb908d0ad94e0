import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { canonicalJson } from "./canonical-json.js";
import { AUDIT_FORMAT_VERSION } from "./hash-chain.js";

/**
 * Signed checkpoints. A checkpoint is an ed25519 signature over (log id, seq, hash, ts):
 * "record `seq` of log `logId` had hash `hash`". Because each hash commits to every record
 * before it, one valid checkpoint vouches for the whole prefix 1..seq. Whoever can write
 * the database can rebuild a consistent chain; only the holder of the private key can sign
 * a checkpoint for it. The signed bytes are
 *
 *   canonical({ hash, logId, seq, ts, type: "hangar-audit-checkpoint", v: 1 })
 */
export interface CheckpointClaim {
  readonly logId: string;
  readonly seq: number;
  readonly hash: string;
  /** When the checkpoint was made (ISO-8601 UTC). */
  readonly ts: string;
}

export interface SignedCheckpoint extends CheckpointClaim {
  /** keyIdOf(the signer's public key). */
  readonly keyId: string;
  /** The ed25519 signature, base64. */
  readonly signature: string;
}

export function checkpointPayload(claim: CheckpointClaim): string {
  return canonicalJson({ hash: claim.hash, logId: claim.logId, seq: claim.seq, ts: claim.ts, type: "hangar-audit-checkpoint", v: AUDIT_FORMAT_VERSION });
}

/** A short, stable name for a public key: the first 16 hex digits of SHA-256 over its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

/** What signs checkpoints: a private key and the id of its public half. */
export interface CheckpointSigner {
  readonly keyId: string;
  readonly privateKey: KeyObject;
}

export function signCheckpoint(claim: CheckpointClaim, signer: CheckpointSigner): SignedCheckpoint {
  const signature = sign(null, Buffer.from(checkpointPayload(claim), "utf8"), signer.privateKey).toString("base64");
  return { logId: claim.logId, seq: claim.seq, hash: claim.hash, ts: claim.ts, keyId: signer.keyId, signature };
}

/** True when `checkpoint.signature` is `publicKey`'s signature over the checkpoint's claim. */
export function checkpointSignatureValid(checkpoint: SignedCheckpoint, publicKey: KeyObject): boolean {
  const signature = Buffer.from(checkpoint.signature, "base64");
  // ed25519 signatures are 64 bytes; anything else is not worth handing to the verifier.
  if (signature.length !== 64) return false;
  try {
    return verify(null, Buffer.from(checkpointPayload(checkpoint), "utf8"), publicKey, signature);
  } catch {
    return false;
  }
}
