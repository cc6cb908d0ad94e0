import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { writeFileAtomic } from "../baseline/write-file-atomic.js";
import type { UpstreamManifest } from "./upstream-client.js";

/**
 * `.hangar/manifests/<server>.json`: each server's lists as last fetched, so tools/list can
 * answer before the server has started (lazy start). A cache, not a trust anchor: what a
 * server may expose is decided by its approval's pinned digest, checked on every use.
 */
export interface CachedManifest extends UpstreamManifest {
  readonly version: 1;
  readonly server: string;
  readonly fetchedAt: string;
}

const MAX_BYTES = 8 * 1024 * 1024;

export class ManifestCache {
  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  fileOf(server: string): string {
    return join(this.dir, `${server}.json`);
  }

  /** The cached manifest, or undefined when there is none or it is unreadable (logged). */
  async read(server: string): Promise<CachedManifest | undefined> {
    let text: string;
    try {
      const bytes = await readFile(this.fileOf(server));
      if (bytes.length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      text = bytes.toString("utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.logger.warn({ err, server }, "cached manifest unreadable; ignored");
      return undefined;
    }
    try {
      const data = JSON.parse(text) as Partial<CachedManifest>;
      if (data.version !== 1 || data.server !== server || !Array.isArray(data.tools)) throw new Error("not a Hangar manifest cache file for this server");
      return { version: 1, server, fetchedAt: String(data.fetchedAt), tools: data.tools, prompts: data.prompts ?? [], resources: data.resources ?? [], resourceTemplates: data.resourceTemplates ?? [] };
    } catch (err) {
      this.logger.warn({ err, server }, "cached manifest invalid; ignored");
      return undefined;
    }
  }

  /** Servers with a cached manifest (none when the folder does not exist). */
  async servers(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -".json".length)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.logger.warn({ err, dir: this.dir }, "manifest cache unreadable");
      return [];
    }
  }

  async write(server: string, manifest: UpstreamManifest, fetchedAt: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const cached: CachedManifest = { version: 1, server, fetchedAt, ...manifest };
    await writeFileAtomic(this.fileOf(server), `${JSON.stringify(cached, null, 2)}\n`);
  }
}
