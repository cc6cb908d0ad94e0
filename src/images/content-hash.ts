import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";

/** One input of an image: a literal (a Dockerfile, a base image id) or a directory tree. */
export type HashInput =
  | { readonly kind: "text"; readonly name: string; readonly value: string }
  | { readonly kind: "tree"; readonly name: string; readonly dir: string; readonly skip?: readonly string[] };

async function hashFile(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

async function hashTree(hash: Hash, root: string, rel: string, skip: readonly string[]): Promise<void> {
  const entries = (await readdir(join(root, rel), { withFileTypes: true })).map((e) => e.name).sort();
  for (const name of entries) {
    const path = rel === "" ? name : `${rel}/${name}`;
    if (skip.includes(path)) continue;
    const full = join(root, path);
    const info = await lstat(full);
    if (info.isSymbolicLink()) {
      hash.update(`L ${path} -> ${await readlink(full)}\n`);
    } else if (info.isDirectory()) {
      hash.update(`D ${path}\n`);
      await hashTree(hash, root, path, skip);
    } else if (info.isFile()) {
      // The exec bit matters (bin scripts); owner and times do not.
      hash.update(`F ${path} ${info.mode & 0o111 ? "x" : "-"} ${info.size}\n`);
      await hashFile(hash, full);
    }
  }
}

/**
 * A stable sha256 over everything an image is built from: equal hash, equal image, so
 * an existing image labelled with it is reused instead of rebuilt.
 */
export async function contentHash(inputs: readonly HashInput[]): Promise<string> {
  const hash = createHash("sha256");
  for (const input of inputs) {
    if (input.kind === "text") {
      hash.update(`T ${input.name} ${Buffer.byteLength(input.value)}\n${input.value}\n`);
    } else {
      hash.update(`R ${input.name}\n`);
      await hashTree(hash, input.dir, "", input.skip ?? []);
    }
  }
  return hash.digest("hex");
}
