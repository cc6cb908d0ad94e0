import { readFile, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, relative, resolve } from "node:path";
import type { Policy } from "../core/policy/policy-schema.js";
import type { ContainerEngine, ImageInfo } from "../docker/container-engine.js";
import { hangarLabels, LABEL_CONTENT } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import { DEFAULT_BASE_IMAGE, type ProgressListener, type ServerImage } from "./build-progress.js";
import { contentHash } from "./content-hash.js";
import type { NpmStager } from "./npm-stager.js";

export interface ServerImageRequest {
  readonly policy: Policy;
  /** The policy file: relative `server.build.context` paths are resolved against its folder. */
  readonly policyFile: string;
  readonly base?: string;
  readonly onProgress?: ProgressListener;
}

/** The command that starts an npm package: its `bin`, resolved from its package.json. */
export function npmEntrypoint(name: string, manifest: Readonly<Record<string, unknown>>): string[] {
  const bin = manifest["bin"];
  let target: string | undefined;
  if (typeof bin === "string") {
    target = bin;
  } else if (bin !== null && typeof bin === "object") {
    const entries = Object.entries(bin as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string");
    const unscoped = name.replace(/^@[^/]+\//, "");
    target = entries.length === 1 ? entries[0]![1] : entries.find(([k]) => k === unscoped || k === name)?.[1];
    if (target === undefined && entries.length > 1) {
      throw runtimeError(
        "HANGAR_IMAGE_BUILD",
        `${name} has several bins (${entries.map(([k]) => k).join(", ")}); say which one with server.command in the policy`,
      );
    }
  }
  if (target === undefined) throw runtimeError("HANGAR_IMAGE_BUILD", `${name} declares no bin; give server.command in the policy`);
  return ["node", posix.join("/app/node_modules", name, posix.normalize(target))];
}

const imageTag = (policy: Policy, hash: string): string => `hangar/server-${policy.name}:${hash.slice(0, 12)}`;

/**
 * Builds (or finds) the image of one server: an npm package staged on the host, a
 * Dockerfile from the policy, or an image that must already be present locally.
 */
export class ServerImageBuilder {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly packageRoot: string,
    private readonly stager: NpmStager,
  ) {}

  async build(request: ServerImageRequest): Promise<ServerImage> {
    const { server } = request.policy;
    if (server.npm !== undefined) return this.buildNpm(request, server.npm);
    if (server.build !== undefined) return this.buildDockerfile(request, server.build);
    if (server.image !== undefined) return this.findImage(request, server.image);
    throw runtimeError("HANGAR_IMAGE_BUILD", `policy ${request.policy.name} names no server source`);
  }

  private async baseImage(ref: string): Promise<ImageInfo> {
    const base = await this.engine.inspectImage(ref);
    if (base === undefined) throw runtimeError("HANGAR_IMAGE_MISSING", `base image ${ref} is missing (build it first; Hangar never pulls)`);
    return base;
  }

  private async buildNpm(request: ServerImageRequest, npm: NonNullable<Policy["server"]["npm"]>): Promise<ServerImage> {
    const { policy } = request;
    const baseRef = request.base ?? DEFAULT_BASE_IMAGE;
    const spec = `${npm.package}@${npm.version}`;
    const report = (phase: "check" | "reuse" | "stage" | "verify" | "install" | "build" | "done", message: string, image = spec): void =>
      request.onProgress?.({ image, phase, message });
    const base = await this.baseImage(baseRef);

    report("stage", `installing ${spec} on the host (scripts disabled)`);
    const staged = await this.stager.stage({
      name: npm.package,
      version: npm.version,
      ...(npm.integrity ? { integrity: npm.integrity } : {}),
      onLine: (line) => report("install", line),
    });
    report("verify", `${spec} integrity ${staged.integrity}${staged.reused ? " (already staged)" : ""}`);

    const entrypoint = policy.server.command ?? npmEntrypoint(npm.package, staged.manifest);
    const dockerfile = await readFile(join(this.packageRoot, "images/server-npm/Dockerfile"), "utf8");
    const hash = await contentHash([
      { kind: "text", name: "Dockerfile", value: dockerfile },
      { kind: "text", name: "base", value: base.id },
      { kind: "text", name: "package", value: spec },
      { kind: "text", name: "package-lock.json", value: staged.lockfileText },
    ]);
    const tag = imageTag(policy, hash);
    const result = { source: "npm" as const, entrypoint, cmd: policy.server.args, lockfile: staged.lockfile, integrity: staged.integrity, contentHash: hash };
    const existing = await this.findByContent(tag, hash);
    if (existing !== undefined) {
      report("reuse", `${tag} ${existing.id}`, tag);
      return { ...result, ref: tag, id: existing.id, repoDigests: existing.repoDigests, reused: true };
    }
    await writeFile(join(staged.dir, "Dockerfile"), dockerfile);
    report("build", `docker build ${tag} (BASE=${baseRef})`, tag);
    const image = await this.engine.buildImage({
      contextDir: staged.dir,
      dockerfile: "Dockerfile",
      tag,
      buildArgs: { BASE: baseRef },
      labels: hangarLabels({ server: policy.name, role: "image", run: "build" }, { [LABEL_CONTENT]: hash, "hangar.npm": spec }),
      onOutput: (line) => report("build", line, tag),
    });
    report("done", `${tag} ${image.id}`, tag);
    return { ...result, ref: tag, id: image.id, repoDigests: image.repoDigests, reused: false };
  }

  private async buildDockerfile(request: ServerImageRequest, build: NonNullable<Policy["server"]["build"]>): Promise<ServerImage> {
    const { policy } = request;
    const baseRef = request.base ?? DEFAULT_BASE_IMAGE;
    const context = resolve(dirname(request.policyFile), build.context);
    const dockerfile = isAbsolute(build.dockerfile) ? relative(context, build.dockerfile) : build.dockerfile;
    if (dockerfile.startsWith("..")) {
      throw runtimeError("HANGAR_IMAGE_BUILD", `server.build.dockerfile ${build.dockerfile} lies outside the build context ${context}`);
    }
    const report = (phase: "check" | "reuse" | "build" | "done", message: string, image: string): void =>
      request.onProgress?.({ image, phase, message });
    const base = await this.baseImage(baseRef);
    report("check", `hashing build context ${context}`, policy.name);
    const hash = await contentHash([
      { kind: "text", name: "dockerfile", value: dockerfile },
      { kind: "text", name: "base", value: base.id },
      { kind: "tree", name: "context", dir: context, skip: [".git"] },
    ]);
    const tag = imageTag(policy, hash);
    const result = {
      source: "build" as const,
      ...(policy.server.command ? { entrypoint: policy.server.command } : {}),
      ...(policy.server.args.length > 0 || policy.server.command ? { cmd: policy.server.args } : {}),
      contentHash: hash,
    };
    const existing = await this.findByContent(tag, hash);
    if (existing !== undefined) {
      report("reuse", `${tag} ${existing.id}`, tag);
      return { ...result, ref: tag, id: existing.id, repoDigests: existing.repoDigests, reused: true };
    }
    report("build", `docker build ${tag} from ${context} (BASE=${baseRef})`, tag);
    const image = await this.engine.buildImage({
      contextDir: context,
      dockerfile,
      tag,
      buildArgs: { BASE: baseRef },
      labels: hangarLabels({ server: policy.name, role: "image", run: "build" }, { [LABEL_CONTENT]: hash }),
      onOutput: (line) => report("build", line, tag),
    });
    report("done", `${tag} ${image.id}`, tag);
    return { ...result, ref: tag, id: image.id, repoDigests: image.repoDigests, reused: false };
  }

  private async findImage(request: ServerImageRequest, source: NonNullable<Policy["server"]["image"]>): Promise<ServerImage> {
    const { policy } = request;
    request.onProgress?.({ image: source.ref, phase: "check", message: `looking for ${source.ref} locally (never pulled)` });
    const image = await this.engine.inspectImage(source.ref);
    if (image === undefined) {
      throw runtimeError("HANGAR_IMAGE_MISSING", `image ${source.ref} is not present locally; Hangar never pulls (docker load it first)`);
    }
    if (source.digest !== undefined && image.id !== source.digest && !image.repoDigests.some((d) => d.endsWith(`@${source.digest}`))) {
      throw runtimeError("HANGAR_INTEGRITY_MISMATCH", `image ${source.ref} is ${image.id}, but the policy pins ${source.digest}`, {
        data: { ref: source.ref, id: image.id, repoDigests: image.repoDigests, pinned: source.digest },
      });
    }
    request.onProgress?.({ image: source.ref, phase: "done", message: `${source.ref} ${image.id}` });
    return {
      source: "image",
      ref: source.ref,
      id: image.id,
      repoDigests: image.repoDigests,
      reused: true,
      ...(policy.server.command ? { entrypoint: policy.server.command } : {}),
      ...(policy.server.args.length > 0 || policy.server.command ? { cmd: policy.server.args } : {}),
    };
  }

  private async findByContent(tag: string, hash: string): Promise<ImageInfo | undefined> {
    const existing = await this.engine.inspectImage(tag);
    return existing?.labels[LABEL_CONTENT] === hash ? existing : undefined;
  }
}
