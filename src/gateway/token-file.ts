import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../baseline/write-file-atomic.js";
import { HangarError } from "../core/errors.js";

/**
 * Bearer tokens for the HTTP endpoint, in `.hangar/tokens.json` (mode 0600):
 *   { "version": 1, "tokens": [{ "id": "tok-1a2b3c4d", "identity": "alice", "sha256": "<hex>", "createdAt": "..." }] }
 * Only SHA-256 hashes are stored: the token itself is shown once, at creation. A token is
 * 32 random bytes, so a fast unsalted hash is enough (nothing to brute-force); comparing
 * hashes with timingSafeEqual, against every entry, leaks no prefix through timing.
 */
export interface TokenEntry {
  readonly id: string;
  readonly identity: string;
  readonly sha256: string;
  readonly createdAt: string;
  readonly description?: string;
}

export interface TokenFile {
  readonly version: 1;
  readonly tokens: readonly TokenEntry[];
}

export const TOKEN_PREFIX = "hgr_";
const MAX_BYTES = 1024 * 1024;

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function newToken(random: (n: number) => Buffer = randomBytes): { token: string; id: string } {
  return { token: `${TOKEN_PREFIX}${random(32).toString("base64url")}`, id: `tok-${random(4).toString("hex")}` };
}

/** The identity whose token this is, or undefined. Constant work for any input of a given length. */
export function identityForToken(file: TokenFile, presented: string): string | undefined {
  const hash = Buffer.from(hashToken(presented), "hex");
  let found: string | undefined;
  for (const entry of file.tokens) {
    const stored = Buffer.from(entry.sha256, "hex");
    if (stored.length === hash.length && timingSafeEqual(stored, hash) && found === undefined) found = entry.identity;
  }
  return found;
}

export async function readTokenFile(path: string): Promise<TokenFile> {
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, tokens: [] };
    throw new HangarError("HANGAR_GATEWAY_TOKENS_INVALID", `${path}: cannot read the token file: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  return parseTokenFile(text, path);
}

export function parseTokenFile(text: string, path: string): TokenFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new HangarError("HANGAR_GATEWAY_TOKENS_INVALID", `${path}: not JSON: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  const file = data as { version?: unknown; tokens?: unknown };
  if (file.version !== 1 || !Array.isArray(file.tokens)) throw new HangarError("HANGAR_GATEWAY_TOKENS_INVALID", `${path}: expected { "version": 1, "tokens": [...] }`, { data: { path } });
  const tokens = file.tokens.map((t: unknown, i): TokenEntry => {
    const e = t as Partial<TokenEntry>;
    if (typeof e.id !== "string" || typeof e.identity !== "string" || typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256)) {
      throw new HangarError("HANGAR_GATEWAY_TOKENS_INVALID", `${path}: tokens[${i}] needs id, identity and a 64-hex-digit sha256`, { data: { path, index: i } });
    }
    return { id: e.id, identity: e.identity, sha256: e.sha256, createdAt: String(e.createdAt ?? ""), ...(typeof e.description === "string" ? { description: e.description } : {}) };
  });
  return { version: 1, tokens };
}

export async function writeTokenFile(path: string, file: TokenFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
  await chmod(path, 0o600);
}

/**
 * The token file as the HTTP endpoint uses it: re-read when its mtime changes (checked at
 * most every `checkMs`), so `hangar token create` and revocations apply without a restart.
 * A file that becomes unreadable keeps the last good contents (logged by the caller).
 */
export class TokenStore {
  private file: TokenFile = { version: 1, tokens: [] };
  private mtimeMs = -1;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
    private readonly checkMs = 1000,
  ) {}

  async load(): Promise<void> {
    this.file = await readTokenFile(this.path);
    this.mtimeMs = await stat(this.path).then((s) => s.mtimeMs, () => -1);
    this.checkedAt = this.now();
  }

  async identityFor(token: string): Promise<string | undefined> {
    if (this.now() - this.checkedAt >= this.checkMs) {
      this.checkedAt = this.now();
      const mtime = await stat(this.path).then((s) => s.mtimeMs, () => -1);
      if (mtime !== this.mtimeMs) await this.load();
    }
    return identityForToken(this.file, token);
  }

  get size(): number {
    return this.file.tokens.length;
  }
}
