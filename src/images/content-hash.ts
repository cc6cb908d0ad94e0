import { createHash, type Hash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** One input of an image: a literal (a Dockerfile, a base image id) or a directory tree. */
export type HashInput =
  | { readonly kind: "text"; readonly name: string; readonly value: string }
  | { readonly kind: "tree"; readonly name: string; readonly dir: string; readonly skip?: readonly string[] };

/** One entry of a tree in hashing order: the line it contributes, and the file whose bytes follow it. */
interface TreeEntry {
  readonly line: string;
  readonly file?: string;
  /** What changes whenever the file's bytes may have: size, mtime, ctime, inode. */
  readonly stamp: string;
}

/**
 * The tree's entries in sorted order. Each directory's entries are examined in parallel:
 * one by one, the round trips to the file system's thread pool cost more than the hashing.
 */
async function listTree(root: string, rel: string, skip: readonly string[]): Promise<TreeEntry[]> {
  const names = (await readdir(join(root, rel), { withFileTypes: true })).map((e) => e.name).sort();
  const lists = await Promise.all(
    names.map(async (name): Promise<TreeEntry[]> => {
      const path = rel === "" ? name : `${rel}/${name}`;
      if (skip.includes(path)) return [];
      const full = join(root, path);
      const info = await lstat(full);
      if (info.isSymbolicLink()) {
        const line = `L ${path} -> ${await readlink(full)}\n`;
        return [{ line, stamp: line }];
      }
      if (info.isDirectory()) return [{ line: `D ${path}\n`, stamp: `D ${path}` }, ...(await listTree(root, path, skip))];
      if (!info.isFile()) return [];
      // The exec bit matters (bin scripts); owner and times do not.
      const line = `F ${path} ${info.mode & 0o111 ? "x" : "-"} ${info.size}\n`;
      return [{ line, file: full, stamp: `${line} ${info.mtimeMs} ${info.ctimeMs} ${info.ino}` }];
    }),
  );
  return lists.flat();
}

const READ_AHEAD = 16;

/** Feeds the entries to the hash in order, reading up to READ_AHEAD files ahead. */
async function hashEntries(hash: Hash, entries: readonly TreeEntry[]): Promise<void> {
  const reads = new Map<number, Promise<Buffer>>();
  const readAt = (i: number): void => {
    const file = entries[i]?.file;
    if (file !== undefined && !reads.has(i)) reads.set(i, readFile(file));
  };
  for (let i = 0; i < Math.min(READ_AHEAD, entries.length); i++) readAt(i);
  for (let i = 0; i < entries.length; i++) {
    readAt(i + READ_AHEAD);
    const entry = entries[i]!;
    hash.update(entry.line);
    const bytes = reads.get(i);
    if (bytes !== undefined) {
      hash.update(await bytes);
      reads.delete(i);
    }
  }
}

/**
 * A stable sha256 over everything an image is built from: equal hash, equal image, so
 * an existing image labelled with it is reused instead of rebuilt.
 */
export async function contentHash(inputs: readonly HashInput[], options: ContentHashOptions = {}): Promise<string> {
  const trees = await Promise.all(inputs.map((input) => (input.kind === "tree" ? listTree(input.dir, "", input.skip ?? []) : undefined)));
  const stamp = options.stampFile !== undefined ? stampOf(inputs, trees) : undefined;
  if (stamp !== undefined && options.stampFile !== undefined) {
    const cached = await readStamp(options.stampFile);
    if (cached?.stamp === stamp) return cached.hash;
  }
  const hash = createHash("sha256");
  for (const [i, input] of inputs.entries()) {
    if (input.kind === "text") {
      hash.update(`T ${input.name} ${Buffer.byteLength(input.value)}\n${input.value}\n`);
    } else {
      hash.update(`R ${input.name}\n`);
      await hashEntries(hash, trees[i] ?? []);
    }
  }
  const digest = hash.digest("hex");
  // Best effort: an installed package's folder may not be writable; then every run hashes.
  if (stamp !== undefined && options.stampFile !== undefined) await writeStamp(options.stampFile, { stamp, hash: digest }).catch(() => undefined);
  return digest;
}

export interface ContentHashOptions {
  /**
   * A file remembering the last hash with a stamp of its inputs (texts, and each file's path,
   * mode, size, mtime, ctime and inode). While the stamp is unchanged, the hash is reused
   * instead of reading every file again: hashing dist took half a second of each `hangar run`.
   * ctime cannot be set back by tools that preserve mtime, so a rewritten file changes it.
   */
  readonly stampFile?: string;
}

function stampOf(inputs: readonly HashInput[], trees: readonly (readonly TreeEntry[] | undefined)[]): string {
  const stamp = createHash("sha256");
  for (const [i, input] of inputs.entries()) {
    if (input.kind === "text") stamp.update(`T ${input.name} ${Buffer.byteLength(input.value)}\n${input.value}\n`);
    else for (const entry of trees[i] ?? []) stamp.update(`${entry.stamp}\n`);
  }
  return stamp.digest("hex");
}

async function readStamp(file: string): Promise<{ stamp: string; hash: string } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as { stamp?: unknown; hash?: unknown };
    return typeof parsed.stamp === "string" && typeof parsed.hash === "string" ? { stamp: parsed.stamp, hash: parsed.hash } : undefined;
  } catch {
    return undefined;
  }
}

async function writeStamp(file: string, value: { stamp: string; hash: string }): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Renamed into place: a concurrent run reads the old stamp or the new one, never half of one.
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(value));
  await rename(temp, file);
}
