import { createHash } from "node:crypto";
import { cp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerEngine } from "../docker/container-engine.js";
import { hangarLabels, LABEL_CONTENT, SHARED } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import { DEFAULT_BASE_IMAGE, DEFAULT_SIDECAR_IMAGE, type BuiltImage, type ProgressListener } from "./build-progress.js";
import { contentHash } from "./content-hash.js";
import { copyProductionModules, linkTree } from "./production-modules.js";
import { addonSources, compileSidecarAddons } from "./native-addon.js";

export interface SidecarImageOptions {
  readonly tag?: string;
  /** Base image (tag); must exist locally. */
  readonly base?: string;
  /** Compiled output to ship; default `<packageRoot>/dist`. */
  readonly distDir?: string;
  readonly onProgress?: ProgressListener;
}

/**
 * hangar/sidecar: the compiled dist, package.json and the production node_modules,
 * staged in `<packageRoot>/.stage/sidecar` and built with images/sidecar/Dockerfile.
 * Skipped when an image labelled with the same content hash exists.
 */
export class SidecarImageBuilder {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly packageRoot: string,
  ) {}

  async ensure(options: SidecarImageOptions = {}): Promise<BuiltImage> {
    const tag = options.tag ?? DEFAULT_SIDECAR_IMAGE;
    const baseRef = options.base ?? DEFAULT_BASE_IMAGE;
    const distDir = options.distDir ?? join(this.packageRoot, "dist");
    const report = (phase: "check" | "reuse" | "stage" | "build" | "done", message: string): void =>
      options.onProgress?.({ image: tag, phase, message });

    const entry = join(distDir, "sidecar/main.js");
    if (!(await stat(entry).then((s) => s.isFile(), () => false))) {
      throw runtimeError("HANGAR_IMAGE_BUILD", `the sidecar is not compiled: ${entry} is missing (run "npm run build")`);
    }
    const base = await this.engine.inspectImage(baseRef);
    if (base === undefined) throw runtimeError("HANGAR_IMAGE_MISSING", `base image ${baseRef} is missing (build it first; Hangar never pulls)`);

    const dockerfile = await readFile(join(this.packageRoot, "images/sidecar/Dockerfile"), "utf8");
    const lockfile = await readFile(join(this.packageRoot, "package-lock.json"), "utf8");
    const packageJson = await readFile(join(this.packageRoot, "package.json"), "utf8");
    const addons = await addonSources(this.packageRoot);
    report("check", "hashing dist, lockfile and base");
    const hash = await contentHash([
      { kind: "text", name: "Dockerfile", value: dockerfile },
      { kind: "text", name: "base", value: base.id },
      { kind: "text", name: "package.json", value: packageJson },
      { kind: "text", name: "package-lock.json", value: lockfile },
      ...addons,
      { kind: "tree", name: "dist", dir: distDir },
    ], { stampFile: join(this.packageRoot, ".stage/sidecar", `stamp-${createHash("sha256").update(`${tag}\0${distDir}`).digest("hex").slice(0, 16)}.json`) });
    const existing = await this.engine.inspectImage(tag);
    if (existing !== undefined && existing.labels[LABEL_CONTENT] === hash) {
      report("reuse", `${tag} ${existing.id}`);
      return { ref: tag, id: existing.id, repoDigests: existing.repoDigests, contentHash: hash, reused: true };
    }

    const stage = join(this.packageRoot, ".stage/sidecar", `build-${process.pid}-${Date.now()}`);
    report("stage", `staging dist and production node_modules in ${stage}`);
    try {
      await this.stage(stage, distDir, dockerfile, packageJson, lockfile);
      // The native addons (SIDECAR_ADDONS), each beside the module that loads it. Without a C
      // compiler the image still builds, without what each gives (and the report says so).
      await compileSidecarAddons(this.packageRoot, join(stage, "dist"), (addon, err) => report("stage", `${addon.source} not built (${addon.without}): ${err.message}`));
      report("build", `docker build ${tag} (BASE=${baseRef})`);
      const image = await this.engine.buildImage({
        contextDir: stage,
        dockerfile: "Dockerfile",
        tag,
        buildArgs: { BASE: baseRef },
        labels: hangarLabels({ server: SHARED, role: "image", run: SHARED }, { [LABEL_CONTENT]: hash }),
        onOutput: (line) => report("build", line),
      });
      // The image the tag named before is now untagged; drop it unless a container still uses it.
      if (existing !== undefined && existing.id !== image.id) await this.engine.removeImage(existing.id, { force: false });
      report("done", `${tag} ${image.id}`);
      return { ref: tag, id: image.id, repoDigests: image.repoDigests, contentHash: hash, reused: false };
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /**
   * Production node_modules are copied once per lockfile into an immutable cache
   * (.stage/sidecar/modules-<hash>), then hard-linked into each build context, so
   * concurrent builds never share a half-written folder.
   */
  private async stage(stage: string, distDir: string, dockerfile: string, packageJson: string, lockfile: string): Promise<void> {
    const lockHash = (await contentHash([{ kind: "text", name: "lock", value: lockfile }])).slice(0, 16);
    const cache = join(this.packageRoot, ".stage/sidecar", `modules-${lockHash}`);
    if (!(await stat(cache).then(() => true, () => false))) {
      const fresh = `${cache}.tmp-${process.pid}-${Date.now()}`;
      await copyProductionModules(this.packageRoot, fresh);
      // Another build may have won the race; its cache is as good as ours.
      await rename(fresh, cache).catch(() => rm(fresh, { recursive: true, force: true }));
      // Caches of older lockfiles are never used again.
      for (const old of await readdir(join(this.packageRoot, ".stage/sidecar"))) {
        if (/^modules-[0-9a-f]{16}$/.test(old) && old !== `modules-${lockHash}`) await rm(join(this.packageRoot, ".stage/sidecar", old), { recursive: true, force: true });
      }
    }
    await linkTree(join(cache, "node_modules"), join(stage, "node_modules"));
    await cp(distDir, join(stage, "dist"), { recursive: true });
    await writeFile(join(stage, "Dockerfile"), dockerfile);
    await writeFile(join(stage, "package.json"), packageJson);
    await writeFile(join(stage, "package-lock.json"), lockfile);
  }
}
