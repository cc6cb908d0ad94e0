import { generateKeyPairSync } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSigningKeys, keyPaths, loadPublicKey, loadSigner } from "../../src/audit/index.js";
import { checkpointSignatureValid, keyIdOf, signCheckpoint } from "../../src/core/audit/checkpoint.js";
import { isHangarError } from "../../src/core/errors.js";
import { tempDir } from "./support.js";

let temp: ReturnType<typeof tempDir>;
beforeEach(() => (temp = tempDir()));
afterEach(() => temp[Symbol.dispose]());

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return { ...(isHangarError(err) ? { code: err.code } : {}), message: (err as Error).message };
  }
  throw new Error("expected a throw");
}

describe("createSigningKeys", () => {
  it("writes the private key with mode 0600 and a readable public key, in a 0700 directory", () => {
    const dir = join(temp.dir, ".hangar");
    const created = createSigningKeys(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(created.paths.privateKey).mode & 0o777).toBe(0o600);
    expect(statSync(created.paths.publicKey).mode & 0o777).toBe(0o644);
    expect(readFileSync(created.paths.privateKey, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(created.paths.publicKey, "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(created.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it("sets mode 0600 even under a permissive umask", () => {
    const previous = process.umask(0o000);
    try {
      const created = createSigningKeys(temp.dir);
      expect(statSync(created.paths.privateKey).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it("refuses to overwrite existing keys without force, and replaces them with it", () => {
    const first = createSigningKeys(temp.dir);
    const before = readFileSync(first.paths.privateKey, "utf8");
    expect(errorOf(() => createSigningKeys(temp.dir))).toMatchObject({ code: "HANGAR_AUDIT_KEY_EXISTS" });
    expect(readFileSync(first.paths.privateKey, "utf8")).toBe(before);
    const second = createSigningKeys(temp.dir, { force: true });
    expect(second.replaced).toBe(true);
    expect(second.keyId).not.toBe(first.keyId);
    expect(statSync(second.paths.privateKey).mode & 0o777).toBe(0o600);
  });

  it("refuses when only one half of the pair exists", () => {
    writeFileSync(keyPaths(temp.dir).publicKey, "x");
    expect(errorOf(() => createSigningKeys(temp.dir)).code).toBe("HANGAR_AUDIT_KEY_EXISTS");
  });
});

describe("loading keys", () => {
  it("round-trips: what the signer signs, the public key verifies", () => {
    const { paths, keyId } = createSigningKeys(temp.dir);
    const signer = loadSigner(paths.privateKey);
    const publicKey = loadPublicKey(paths.publicKey);
    expect(signer.keyId).toBe(keyId);
    expect(keyIdOf(publicKey)).toBe(keyId);
    const checkpoint = signCheckpoint({ logId: "l", seq: 1, hash: "0".repeat(64), ts: "2025-01-01T00:00:00.000Z" }, signer);
    expect(checkpointSignatureValid(checkpoint, publicKey)).toBe(true);
    expect(checkpointSignatureValid({ ...checkpoint, seq: 2 }, publicKey)).toBe(false);
  });

  it("refuses a private key that others can read", () => {
    const { paths } = createSigningKeys(temp.dir);
    chmodSync(paths.privateKey, 0o644);
    expect(errorOf(() => loadSigner(paths.privateKey))).toEqual({ code: "HANGAR_AUDIT_KEY_INVALID", message: `${paths.privateKey} is readable by others (mode 0644); run: chmod 600 ${paths.privateKey}` });
  });

  it("refuses keys that are missing, garbage, or not ed25519", () => {
    const missing = join(temp.dir, "nope.key");
    expect(errorOf(() => loadSigner(missing))).toMatchObject({ code: "HANGAR_AUDIT_KEY_INVALID", message: `no key at ${missing}; create one with: hangar init` });
    const garbage = join(temp.dir, "garbage.pub");
    writeFileSync(garbage, "hello");
    expect(errorOf(() => loadPublicKey(garbage)).message).toMatch(/not a PEM public key/);
    const rsa = join(temp.dir, "rsa.pub");
    writeFileSync(rsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }));
    expect(errorOf(() => loadPublicKey(rsa)).message).toMatch(/an rsa key; audit checkpoints use ed25519/);
  });
});
