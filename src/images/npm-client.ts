import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runtimeError } from "../docker/runtime-error.js";
import { runCommand } from "./run-command.js";

export interface RegistryPackage {
  readonly name: string;
  readonly version: string;
  /** dist.integrity as the registry publishes it. */
  readonly integrity: string;
}

/** The npm registry as the image builders need it. The CLI implementation sits below. */
export interface NpmClient {
  view(name: string, version: string): Promise<RegistryPackage>;
  /** The published tarball's bytes (to hash with an algorithm the registry does not list). */
  tarball(name: string, version: string, workDir: string): Promise<Buffer>;
  /** `npm install` in `dir` from its package.json: no install scripts, no devDependencies, writes the lockfile. */
  install(dir: string, onLine?: (line: string) => void): Promise<void>;
}

/** NpmClient over the ordinary `npm` command, so the user's registry and auth config apply. */
export class NpmCliClient implements NpmClient {
  constructor(private readonly npm: string = "npm") {}

  async view(name: string, version: string): Promise<RegistryPackage> {
    const { stdout } = await runCommand(this.npm, ["view", `${name}@${version}`, "name", "version", "dist.integrity", "--json"], {
      errorCode: "HANGAR_NPM",
      timeoutMs: 60_000,
    });
    let data: Record<string, unknown> | undefined;
    try {
      data = stdout.trim() === "" ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
    } catch (cause) {
      throw runtimeError("HANGAR_NPM", `npm view ${name}@${version}: unreadable answer`, { cause });
    }
    const integrity = data?.["dist.integrity"];
    if (data === undefined || data["version"] !== version || typeof integrity !== "string") {
      throw runtimeError("HANGAR_NPM", `npm view ${name}@${version}: the registry has no such version`, { data: { name, version } });
    }
    return { name, version, integrity };
  }

  async tarball(name: string, version: string, workDir: string): Promise<Buffer> {
    const { stdout } = await runCommand(this.npm, ["pack", `${name}@${version}`, "--json", "--pack-destination", workDir], {
      errorCode: "HANGAR_NPM",
      cwd: workDir,
      timeoutMs: 120_000,
    });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string }>;
    if (packed === undefined) throw runtimeError("HANGAR_NPM", `npm pack ${name}@${version} produced nothing`);
    return readFile(join(workDir, packed.filename.replace(/^@/, "").replace(/\//, "-")));
  }

  async install(dir: string, onLine?: (line: string) => void): Promise<void> {
    // --ignore-scripts: an untrusted package's install scripts never run on the host.
    await runCommand(
      this.npm,
      ["install", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier", "--package-lock=true", "--install-links=false"],
      { errorCode: "HANGAR_NPM", cwd: dir, timeoutMs: 600_000, ...(onLine ? { onLine } : {}) },
    );
  }
}
