import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { stringify } from "yaml";
import type { ContainerEngine, NetworkInfo } from "../../../src/docker/container-engine.js";
import { hangarPackageRoot } from "../../../src/images/package-root.js";
import { SidecarImageBuilder } from "../../../src/images/sidecar-image-builder.js";
import { withFileLock } from "./file-lock.js";
import { TEST_SIDECAR_IMAGE } from "./sidecar-image.js";
import { TestResolver } from "./test-resolver.js";

/**
 * How tests and benches start the real `hangar` CLI as a process, and the sidecar image it
 * is configured with. `hangar run` builds its sidecar from `<root>/dist` whichever way the
 * CLI itself is started, so that image is prepared here once, under the test-image lock,
 * and every CLI process then finds it current.
 */

const ROOT = hangarPackageRoot();
const DIST = join(ROOT, "dist");

/** The tag `hangar run` builds from dist in tests; apart from hangar/sidecar:local, which users and the demo run. */
export const CLI_SIDECAR_IMAGE = "hangar/sidecar:cli-test";

export interface HangarCliCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** "dist" when dist/ is at least as new as every source file, else "tsx" (src through tsx). */
  readonly from: "dist" | "tsx";
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) yield path;
  }
}

/** Every src/**\/*.ts has its dist/**\/*.js, written after the source last changed. */
export function distIsFresh(root = ROOT): boolean {
  for (const source of sourceFiles(join(root, "src"))) {
    const compiled = join(root, "dist", relative(join(root, "src"), source).replace(/\.ts$/, ".js"));
    const built = statSync(compiled, { throwIfNoEntry: false });
    if (built === undefined || built.mtimeMs < statSync(source).mtimeMs) return false;
  }
  return true;
}

/** `node dist/cli/main.js` when dist is fresh, else `node --import tsx src/cli/main.ts`. */
export function hangarCliCommand(root = ROOT): HangarCliCommand {
  if (existsSync(join(root, "dist/cli/main.js")) && distIsFresh(root)) {
    return { command: process.execPath, args: [join(root, "dist/cli/main.js")], from: "dist" };
  }
  return { command: process.execPath, args: ["--import", "tsx", join(root, "src/cli/main.ts")], from: "tsx" };
}

/**
 * The sidecar tag for spawned CLIs, built from dist now (or found current). When the suite's
 * own sidecar image comes from dist too (HANGAR_TEST_SIDECAR_DIST=dist, as in CI), it is the
 * same image: its tag is used and nothing is built twice.
 */
export async function ensureCliSidecarImage(engine: ContainerEngine): Promise<string> {
  if (!existsSync(join(DIST, "sidecar/main.js"))) {
    throw new Error(`hangar run ships ${DIST} in its sidecar image, and there is none: run "npm run build" first`);
  }
  if (!distIsFresh()) console.warn(`hangar run ships ${DIST}, which is older than src/ ("npm run build" refreshes it)`);
  const suiteDist = process.env["HANGAR_TEST_SIDECAR_DIST"];
  const tag = suiteDist !== undefined && resolve(ROOT, suiteDist) === DIST ? TEST_SIDECAR_IMAGE : CLI_SIDECAR_IMAGE;
  await mkdir(join(ROOT, ".stage"), { recursive: true });
  await withFileLock(join(ROOT, ".stage/test-images.lock"), () => new SidecarImageBuilder(engine, ROOT).ensure({ tag, distDir: DIST }));
  return tag;
}

/**
 * A hangar.yaml for spawned CLIs: the given egress network, its subnets trusted (our upstreams
 * live there), and the resolver of ours started on it as the sidecars' only upstream resolver
 * (DockerTestEnv.egressNetwork starts one; a bench starts its own). None there: it throws.
 */
export async function writeRunConfig(file: string, options: { egress: NetworkInfo; sidecarImage: string; isolation?: "runc" | "gvisor" }): Promise<string> {
  const resolver = TestResolver.on(options.egress.name);
  if (resolver === undefined) throw new Error(`no resolver of ours on ${options.egress.name}: the sidecars would ask the engine's, which forwards off this machine`);
  const runtime = {
    ...(options.isolation !== undefined ? { isolation: options.isolation } : {}),
    egressNetwork: options.egress.name,
    trustedUpstreamRanges: options.egress.subnets.map((s) => s.subnet),
    upstreamResolvers: resolver.upstreamResolvers,
    sidecar: { image: options.sidecarImage },
  };
  await writeFile(file, stringify({ version: 1, runtime }));
  return file;
}
