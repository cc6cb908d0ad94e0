import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runtimeError } from "../docker/runtime-error.js";
import type { NpmClient } from "./npm-client.js";
import { parseSri, sriAgree, sriOf } from "./sri.js";

export interface NpmStageRequest {
  readonly name: string;
  readonly version: string;
  /** From the policy; when given, the registry's tarball must match it. */
  readonly integrity?: string;
  readonly onLine?: (line: string) => void;
}

export interface StagedPackage {
  /** Folder holding package.json, package-lock.json and node_modules. */
  readonly dir: string;
  readonly lockfile: string;
  readonly lockfileText: string;
  /** The integrity npm installed, as recorded in the lockfile. */
  readonly integrity: string;
  /** The package's own package.json. */
  readonly manifest: Readonly<Record<string, unknown>>;
  readonly reused: boolean;
}

const MARKER = "hangar-stage.json";

function safeDirName(name: string, version: string): string {
  return `${name.replace(/^@/, "").replace(/\//g, "__")}-${version}`;
}

/**
 * Installs one npm package on the host into `.stage/npm/<name>-<version>/`, at the exact
 * version, with install scripts disabled, and verifies its integrity against the policy,
 * the registry and the lockfile npm wrote. The lockfile is kept as the record.
 */
export class NpmStager {
  constructor(
    private readonly npm: NpmClient,
    private readonly stageRoot: string,
  ) {}

  async stage(request: NpmStageRequest): Promise<StagedPackage> {
    const { name, version } = request;
    const dir = join(this.stageRoot, safeDirName(name, version));
    const reusable = await this.reusable(dir, request);
    if (reusable !== undefined) return reusable;

    const registry = await this.npm.view(name, version);
    const expected = request.integrity ?? registry.integrity;
    if (request.integrity !== undefined) await this.verifyPolicyIntegrity(request.integrity, registry.integrity, name, version);

    await mkdir(this.stageRoot, { recursive: true });
    const work = await mkdtemp(join(this.stageRoot, `.tmp-${safeDirName(name, version)}-`));
    try {
      await writeFile(
        join(work, "package.json"),
        `${JSON.stringify({ name: "hangar-staged-server", private: true, dependencies: { [name]: version } }, null, 2)}\n`,
      );
      await this.npm.install(work, request.onLine);
      const staged = await this.inspect(work, name, version);
      this.verifyInstalled(staged.integrity, expected, registry.integrity, name, version);
      await writeFile(join(work, MARKER), `${JSON.stringify({ name, version, integrity: staged.integrity }, null, 2)}\n`);
      await rm(dir, { recursive: true, force: true });
      // Another process may have staged the same version meanwhile; either copy is verified.
      await rename(work, dir).catch(() => undefined);
      return { ...(await this.inspect(dir, name, version)), reused: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private async reusable(dir: string, request: NpmStageRequest): Promise<StagedPackage | undefined> {
    const marker = await readFile(join(dir, MARKER), "utf8").catch(() => undefined);
    if (marker === undefined) return undefined;
    try {
      const recorded = JSON.parse(marker) as { name?: string; version?: string; integrity?: string };
      if (recorded.name !== request.name || recorded.version !== request.version || recorded.integrity === undefined) return undefined;
      if (request.integrity !== undefined && sriAgree(request.integrity, recorded.integrity) !== true) return undefined;
      const staged = await this.inspect(dir, request.name, request.version);
      return staged.integrity === recorded.integrity ? { ...staged, reused: true } : undefined;
    } catch {
      return undefined;
    }
  }

  private async verifyPolicyIntegrity(policy: string, registry: string, name: string, version: string): Promise<void> {
    let agree = sriAgree(policy, registry);
    if (agree === undefined) {
      // The policy pins an algorithm the registry does not list: hash the published bytes.
      const algorithm = parseSri(policy)[0]?.algorithm ?? "sha512";
      const scratch = await mkdtemp(join(this.stageRoot, ".pack-"));
      try {
        agree = sriAgree(policy, sriOf(await this.npm.tarball(name, version, scratch), algorithm)) === true;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
    if (!agree) {
      throw runtimeError(
        "HANGAR_INTEGRITY_MISMATCH",
        `${name}@${version}: the policy pins integrity ${policy}, but the registry publishes ${registry}. ` +
          "The package changed since it was pinned, or the pin is wrong; nothing was installed.",
        { data: { name, version, policy, registry } },
      );
    }
  }

  private verifyInstalled(installed: string, expected: string, registry: string, name: string, version: string): void {
    if (sriAgree(installed, registry) !== true || (sriAgree(installed, expected) === false)) {
      throw runtimeError(
        "HANGAR_INTEGRITY_MISMATCH",
        `${name}@${version}: npm installed integrity ${installed}, expected ${expected}`,
        { data: { name, version, installed, expected } },
      );
    }
  }

  private async inspect(dir: string, name: string, version: string): Promise<Omit<StagedPackage, "reused">> {
    const lockfile = join(dir, "package-lock.json");
    const lockfileText = await readFile(lockfile, "utf8").catch(() => {
      throw runtimeError("HANGAR_NPM", `npm wrote no lockfile in ${dir}`);
    });
    const lock = JSON.parse(lockfileText) as { packages?: Record<string, { version?: string; integrity?: string }> };
    const entry = lock.packages?.[`node_modules/${name}`];
    if (entry?.version !== version || entry.integrity === undefined) {
      throw runtimeError("HANGAR_NPM", `${name}@${version}: the lockfile in ${dir} does not record that exact version with an integrity`, {
        data: { recorded: entry?.version },
      });
    }
    const manifestPath = join(dir, "node_modules", name, "package.json");
    if (!(await stat(manifestPath).then(() => true, () => false))) throw runtimeError("HANGAR_NPM", `${name} is not installed in ${dir}`);
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as Record<string, unknown>;
    return { dir, lockfile, lockfileText, integrity: entry.integrity, manifest };
  }
}
