import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { HangarError } from "../core/errors.js";
import { npmEntrypoint } from "../images/server-image-builder.js";
import type { BridgeArgs, BridgeArgv } from "./bridge-args.js";

/** Where images Hangar builds from npm install the package (images/server-npm/Dockerfile). */
export const NPM_MODULES_DIR = "/app/node_modules";

/** `--npm <package>`: its bin from its package.json, run as the image builder runs it (`node <bin>`). */
export async function resolveBridgeCommand(argv: BridgeArgv, modulesDir = NPM_MODULES_DIR): Promise<BridgeArgs> {
  if (!("npm" in argv)) return argv;
  const file = join(modulesDir, argv.npm, "package.json");
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new HangarError("HANGAR_USAGE", `--npm ${argv.npm}: ${file} is not readable: ${(err as Error).message}`, { cause: err, data: { file } });
  }
  const [command, ...bin] = npmEntrypoint(argv.npm, manifest).map((part) => (part.startsWith("/app/node_modules/") ? join(modulesDir, part.slice("/app/node_modules/".length)) : part));
  return { listen: argv.listen, command: command!, args: [...bin, ...argv.args] };
}
