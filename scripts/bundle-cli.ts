import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";

/**
 * Bundles the `hangar` CLI over tsc's dist/cli/main.js (`npm run build` runs tsc first).
 * Loading hundreds of small modules (zod alone is about 100) cost more than the work of
 * `hangar policy lint`; one entry plus one chunk per verb loads in a fraction of that.
 * Each verb's code stays in its own chunks, imported when the verb runs (lazy-command.ts).
 * The rest of dist/ (the sidecar, the library) is left as tsc wrote it.
 */
const OUT_DIR = "dist/cli";

// Chunks are content-hashed: remove the previous build's, so dist (shipped in the sidecar image) holds only this one's.
// tsc's map of main.js would describe a file that is no longer there.
for (const name of await readdir(OUT_DIR)) {
  if (/^chunk-[A-Z0-9]+\.js$/.test(name) || name === "main.js.map") await rm(join(OUT_DIR, name));
}

await build({
  entryPoints: ["src/cli/main.ts"],
  outdir: OUT_DIR,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Flat beside main.js: package-root.ts finds the package two directories up, as from dist/images.
  chunkNames: "chunk-[hash]",
  // Native addons (better-sqlite3; ssh2 under dockerode) and pino's worker files are found by path
  // at run time; the X.509 library needs its Reflect polyfill loaded as its own module first.
  external: ["better-sqlite3", "dockerode", "pino", "@peculiar/x509", "reflect-metadata", "tldts"],
  // CommonJS dependencies that call require() need one in an ES module.
  banner: { js: 'import { createRequire as __hangarCreateRequire } from "node:module";\nconst require = __hangarCreateRequire(import.meta.url);' },
  logLevel: "warning",
});
