import { copyFile, cp, link, mkdir, readdir, readFile, readlink, stat, symlink } from "node:fs/promises";
import { join } from "node:path";

interface LockPackage {
  readonly dev?: boolean;
  readonly link?: boolean;
}

/**
 * The node_modules paths `npm ci --omit=dev` would install, read from package-lock.json
 * (v2/v3): every package not marked `dev`. `devOptional` ones stay, since a production
 * package needs them too. Outermost paths only: nested node_modules come with their parent.
 */
export function productionPackagePaths(lockfileText: string): string[] {
  const lock = JSON.parse(lockfileText) as { packages?: Record<string, LockPackage> };
  const paths = Object.entries(lock.packages ?? {})
    .filter(([path, pkg]) => path.startsWith("node_modules/") && pkg.dev !== true && pkg.link !== true)
    .map(([path]) => path)
    .sort();
  return paths.filter((p) => !paths.some((q) => q !== p && p.startsWith(`${q}/`)));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Copies the production packages of an installed tree into `target` (offline, and exactly
 * what the lockfile pins). Optional packages absent on this platform are skipped.
 */
export async function copyProductionModules(projectRoot: string, target: string): Promise<number> {
  const paths = productionPackagePaths(await readFile(join(projectRoot, "package-lock.json"), "utf8"));
  let copied = 0;
  for (const path of paths) {
    const source = join(projectRoot, path);
    if (!(await exists(source))) continue;
    await cp(source, join(target, path), { recursive: true, verbatimSymlinks: true });
    copied += 1;
  }
  return copied;
}

/**
 * Mirrors a tree with hard links (falling back to copies across devices): a build context
 * assembled from an immutable cache in milliseconds, without copying bytes.
 */
export async function linkTree(source: string, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory()) await linkTree(from, to);
    else if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else await link(from, to).catch(() => copyFile(from, to));
  }
}
