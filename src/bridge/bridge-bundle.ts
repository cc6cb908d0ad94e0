import { stat } from "node:fs/promises";
import { join } from "node:path";
import { runtimeError } from "../docker/runtime-error.js";
import { hangarPackageRoot } from "../images/package-root.js";

/** The bridge bundled into one file by `npm run build` (scripts/bundle-cli.ts); also shipped in the sidecar image at /app/dist/bridge/main.js. */
export const BRIDGE_BUNDLE = "dist/bridge/main.js";

/** The bridge's bundle on this host, to mount into a server container; a missing bundle is an error that says how to make it. */
export async function bridgeBundlePath(packageRoot = hangarPackageRoot()): Promise<string> {
  const file = join(packageRoot, BRIDGE_BUNDLE);
  if (!(await stat(file).then((s) => s.isFile(), () => false))) {
    throw runtimeError("HANGAR_IMAGE_BUILD", `runtime.transport "http" needs the stdio↔HTTP bridge, and ${file} is missing (run "npm run build")`, { data: { file } });
  }
  return file;
}
