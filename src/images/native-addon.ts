import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runCommand } from "./run-command.js";

/** The C source of the sidecar's original-destination addon (see src/sidecar/catch-all/original-destination.ts). */
export const ORIGINAL_DST_SOURCE = "images/sidecar/native/original-dst.c";

/**
 * Node's own headers: beside the running binary (official tarballs, nvm), else the distribution's.
 * N-API is ABI-stable, and the sidecar image runs this very node (images/base), so the addon fits.
 */
export function nodeIncludeDir(): string | undefined {
  const candidates = [join(dirname(dirname(process.execPath)), "include/node"), "/usr/include/node", "/usr/local/include/node"];
  return candidates.find((dir) => existsSync(join(dir, "node_api.h")));
}

/** Compiles the addon to `out` with the host's C compiler (`CC`, default cc). Throws with the compiler's output on failure. */
export async function compileOriginalDstAddon(packageRoot: string, out: string): Promise<string> {
  const include = nodeIncludeDir();
  if (include === undefined) throw new Error("node_api.h not found (install the node headers)");
  await mkdir(dirname(out), { recursive: true });
  const cc = process.env["CC"] ?? "cc";
  await runCommand(cc, ["-O2", "-Wall", "-shared", "-fPIC", "-DNODE_GYP_MODULE_NAME=original_dst", `-I${include}`, join(packageRoot, ORIGINAL_DST_SOURCE), "-o", out], {
    errorCode: "HANGAR_IMAGE_BUILD",
    timeoutMs: 60_000,
  });
  return out;
}
