import { open, rm, stat } from "node:fs/promises";

/**
 * Runs `fn` while holding an exclusive lock file, so parallel test files (vitest forks)
 * prepare shared images one at a time; the later ones then find them up to date.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, staleMs = 10 * 60_000): Promise<T> {
  for (;;) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const info = await stat(path).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs > staleMs) await rm(path, { force: true });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
