import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { keyIdOf, type CheckpointSigner } from "../core/audit/checkpoint.js";
import { HangarError } from "../core/errors.js";

/**
 * The checkpoint signing key pair: ed25519, PEM files in the Hangar directory. The private
 * key is mode 0600 and is refused when anyone else can read it (as ssh does), because a
 * key others can read signs nothing they could not have signed too. The public key is
 * what verifiers need; keep a copy somewhere the log's host cannot change it.
 */
export const PRIVATE_KEY_FILE = "audit-signing.key";
export const PUBLIC_KEY_FILE = "audit-signing.pub";
export const DEFAULT_HANGAR_DIR = ".hangar";

/** PEM keys are a few hundred bytes. */
const MAX_KEY_BYTES = 16 * 1024;

export interface KeyPaths {
  readonly privateKey: string;
  readonly publicKey: string;
}

export function keyPaths(dir: string): KeyPaths {
  return { privateKey: join(dir, PRIVATE_KEY_FILE), publicKey: join(dir, PUBLIC_KEY_FILE) };
}

export interface CreatedKeys {
  readonly paths: KeyPaths;
  readonly keyId: string;
  readonly replaced: boolean;
}

/** Creates `dir` (0700 when new) and a fresh key pair in it. Refuses to replace keys unless `force`. */
export function createSigningKeys(dir: string, options: { force?: boolean } = {}): CreatedKeys {
  const paths = keyPaths(dir);
  const existing = [paths.privateKey, paths.publicKey].filter((p) => existsSync(p));
  if (existing.length > 0 && options.force !== true) {
    throw new HangarError("HANGAR_AUDIT_KEY_EXISTS", `${existing.join(" and ")} already exist${existing.length === 1 ? "s" : ""}; replacing the key makes old checkpoints unverifiable with the new one. Use --force to replace it anyway`, { data: { paths: existing } });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  writeFileAtomically(paths.privateKey, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600);
  writeFileAtomically(paths.publicKey, publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644);
  return { paths, keyId: keyIdOf(publicKey), replaced: existing.length > 0 };
}

/** Loads the private key for signing. Throws HANGAR_AUDIT_KEY_INVALID if missing, not ed25519, or readable by others. */
export function loadSigner(privateKeyPath: string): CheckpointSigner {
  const mode = statKey(privateKeyPath).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new HangarError("HANGAR_AUDIT_KEY_INVALID", `${privateKeyPath} is readable by others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 600 ${privateKeyPath}`, { data: { path: privateKeyPath, mode } });
  }
  const privateKey = parseKey(privateKeyPath, "private");
  return { privateKey, keyId: keyIdOf(createPublicKey(privateKey)) };
}

export function loadPublicKey(publicKeyPath: string): KeyObject {
  statKey(publicKeyPath);
  return parseKey(publicKeyPath, "public");
}

function statKey(path: string): { mode: number } {
  try {
    return statSync(path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    throw new HangarError("HANGAR_AUDIT_KEY_INVALID", missing ? `no key at ${path}; create one with: hangar init` : `${path}: ${(err as Error).message}`, { cause: err, data: { path } });
  }
}

function parseKey(path: string, kind: "private" | "public"): KeyObject {
  const text = readFileSync(path);
  if (text.length > MAX_KEY_BYTES) throw new HangarError("HANGAR_AUDIT_KEY_INVALID", `${path}: too large to be a key`, { data: { path } });
  let key: KeyObject;
  try {
    // A public key can also be derived from a private key file; accept both for verifying.
    key = kind === "private" ? createPrivateKey(text) : createPublicKey(text);
  } catch (err) {
    throw new HangarError("HANGAR_AUDIT_KEY_INVALID", `${path}: not a PEM ${kind} key (${(err as Error).message})`, { cause: err, data: { path } });
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new HangarError("HANGAR_AUDIT_KEY_INVALID", `${path}: an ${key.asymmetricKeyType ?? "unknown"} key; audit checkpoints use ed25519`, { data: { path } });
  }
  return key;
}

/** Write to a temporary file with the final mode, sync it, then rename: a crash leaves the old file or the new one. */
export function writeFileAtomically(path: string, text: string, mode: number): void {
  const temporary = `${path}.tmp-${process.pid}`;
  // "wx" after removing a stale leftover: never write through a file or link someone else made.
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, "wx", mode);
  try {
    // The umask may have narrowed `mode`; set it exactly.
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temporary);
    throw err;
  }
  closeSync(fd);
  renameSync(temporary, path);
}
