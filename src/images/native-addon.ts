import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { runCommand } from "./run-command.js";

/** A C addon the sidecar image carries: its source, and where in dist its module expects it. */
export interface SidecarAddon {
  readonly source: string;
  /** N-API module name. */
  readonly name: string;
  /** Relative to dist: beside the module that loads it (the sidecar bundle keeps that module a file of its own). */
  readonly target: string;
  /** What the sidecar loses when a host without a C compiler builds the image without it. */
  readonly without: string;
}

/** The catch-all's getsockopt(SO_ORIGINAL_DST) and UDP catcher (src/sidecar/catch-all/original-destination.ts). */
export const ORIGINAL_DST_ADDON: SidecarAddon = {
  source: "images/sidecar/native/original-dst.c",
  name: "original_dst",
  target: "sidecar/catch-all/native/original-dst.node",
  without: "runtime.catchAll will not work with this image",
};

/** The DNS server's batched UDP socket (src/sidecar/dns/udp-batch-addon.ts). */
export const UDP_BATCH_ADDON: SidecarAddon = {
  source: "images/sidecar/native/udp-batch.c",
  name: "udp_batch",
  target: "sidecar/dns/native/udp-batch.node",
  without: "the DNS server reads and writes its UDP socket one datagram at a time, through dgram",
};

export const SIDECAR_ADDONS: readonly SidecarAddon[] = [ORIGINAL_DST_ADDON, UDP_BATCH_ADDON];

/** Each addon's source, for an image's content hash. */
export async function addonSources(packageRoot: string): Promise<Array<{ kind: "text"; name: string; value: string }>> {
  return Promise.all(SIDECAR_ADDONS.map(async (a) => ({ kind: "text" as const, name: basename(a.source), value: await readFile(join(packageRoot, a.source), "utf8") })));
}

/**
 * Node's own headers: beside the running binary (official tarballs, nvm), else the distribution's.
 * N-API is ABI-stable, and the sidecar image runs this very node (images/base), so the addon fits.
 */
export function nodeIncludeDir(): string | undefined {
  const candidates = [join(dirname(dirname(process.execPath)), "include/node"), "/usr/include/node", "/usr/local/include/node"];
  return candidates.find((dir) => existsSync(join(dir, "node_api.h")));
}

/** Compiles one addon to `out` with the host's C compiler (`CC`, default cc). Throws with the compiler's output on failure. */
export async function compileAddon(packageRoot: string, addon: SidecarAddon, out: string): Promise<string> {
  const include = nodeIncludeDir();
  if (include === undefined) throw new Error("node_api.h not found (install the node headers)");
  await mkdir(dirname(out), { recursive: true });
  const cc = process.env["CC"] ?? "cc";
  await runCommand(cc, ["-O2", "-Wall", "-shared", "-fPIC", `-DNODE_GYP_MODULE_NAME=${addon.name}`, `-I${include}`, join(packageRoot, addon.source), "-o", out], {
    errorCode: "HANGAR_IMAGE_BUILD",
    timeoutMs: 60_000,
  });
  return out;
}

/**
 * Every addon into `distDir`, each beside the module that loads it. One that does not compile
 * is reported (`onMissing`) and left out: the image still builds, without what it gives.
 */
export async function compileSidecarAddons(packageRoot: string, distDir: string, onMissing: (addon: SidecarAddon, err: Error) => void): Promise<void> {
  for (const addon of SIDECAR_ADDONS) {
    await compileAddon(packageRoot, addon, join(distDir, addon.target)).catch((err: unknown) => onMissing(addon, err as Error));
  }
}
