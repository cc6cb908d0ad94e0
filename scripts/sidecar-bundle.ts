import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The sidecar as it ships, bundled over tsc's output of src/: it loaded some 150 modules at
 * every start (about 400 ms of CPU, and the sidecar runs on half a CPU), one file loads in
 * half of that. The sandbox waits for it before the server may start. The native addons'
 * loaders stay tsc's own modules beside it (`<outfile's directory>/catch-all/`, `…/dns/`):
 * each finds its native file relative to itself.
 *
 * Used by `npm run build` (scripts/bundle-cli.ts, into dist/) and by the benches
 * (bench/rig.ts, into their own tsc output), so that a bench measures what ships.
 */
export async function bundleSidecar(outfile: string): Promise<void> {
  await rm(`${outfile}.map`, { force: true });
  await build({
    entryPoints: [join(ROOT, "src/sidecar/main.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external: ["pino", "@peculiar/x509", "reflect-metadata", "tldts"],
    plugins: [SIDECAR_BESIDE],
    banner: { js: 'import { createRequire as __hangarCreateRequire } from "node:module";\nconst require = __hangarCreateRequire(import.meta.url);' },
    logLevel: "warning",
  });
  // V8 keeps a script's source in its heap, two bytes a character if any character is not ASCII:
  // a few "→" in comments esbuild keeps cost the sidecar 0.8 MB. Strings are already escaped; an
  // escape is inert in a comment and valid in a string, regex or identifier alike.
  const js = await readFile(outfile, "utf8");
  await writeFile(outfile, js.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

const SIDECAR_BESIDE: Plugin = {
  name: "hangar-sidecar-beside",
  setup(b) {
    b.onResolve({ filter: /\/original-destination\.js$/ }, (args) =>
      args.importer.includes(join("src", "sidecar")) ? { path: "./catch-all/original-destination.js", external: true } : undefined,
    );
    b.onResolve({ filter: /\/udp-batch-addon\.js$/ }, (args) =>
      args.importer.includes(join("src", "sidecar")) ? { path: "./dns/udp-batch-addon.js", external: true } : undefined,
    );
  },
};
