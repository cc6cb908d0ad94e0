import { readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";
import { bundleSidecar } from "./sidecar-bundle.js";
// tsc's own build of it is what runs here (dist/cli/cached-cjs.js), the very loader the CLI uses.
import type * as CachedCjsModule from "../src/cli/cached-cjs.js";

/**
 * Bundles the `hangar` CLI over tsc's dist/cli/main.js (`npm run build` runs tsc first).
 * Loading hundreds of small modules (zod alone is about 100) cost more than the work of
 * `hangar policy lint`; one entry plus one chunk per verb loads in a fraction of that.
 * Each verb's code stays in its own chunks, imported when the verb runs (lazy-command.ts).
 * The sidecar's entry is bundled too (scripts/sidecar-bundle.ts); the rest of dist/ (the library) is left as tsc wrote it.
 */
const OUT_DIR = "dist/cli";

// Chunks are content-hashed: remove the previous build's, so dist (shipped in the sidecar image) holds only this one's.
// tsc's map of main.js would describe a file that is no longer there.
for (const name of await readdir(OUT_DIR)) {
  if (/^chunk-[A-Z0-9]+\.js$/.test(name) || name === "main.js.map") await rm(join(OUT_DIR, name));
}

/**
 * Modules that dockerode and docker-modem load eagerly but use only for BuildKit sessions
 * (gRPC and protobuf) and for ssh:// engines (ssh2): about 170 ms of CPU at every `hangar run`.
 * Each is replaced by a stand-in that loads the real module on first call, from node_modules.
 */
const LAZY_CJS: ReadonlyArray<{ readonly importer: RegExp; readonly request: string; readonly real: string }> = [
  { importer: /node_modules\/dockerode\/lib\/docker\.js$/, request: "./session", real: "dockerode/lib/session.js" },
  { importer: /node_modules\/docker-modem\/lib\/modem\.js$/, request: "./ssh", real: "docker-modem/lib/ssh.js" },
];

const lazyCjs: Plugin = {
  name: "hangar-lazy-cjs",
  setup(b) {
    b.onResolve({ filter: /^\.\/(session|ssh)$/ }, (args) => {
      const lazy = LAZY_CJS.find((l) => l.request === args.path && l.importer.test(args.importer));
      return lazy === undefined ? undefined : { path: lazy.real, namespace: "hangar-lazy" };
    });
    b.onLoad({ filter: /.*/, namespace: "hangar-lazy" }, (args) => ({
      // A function whose body requires the real module: external, so node loads it only then.
      contents: `module.exports = function () { return require(${JSON.stringify(args.path)}).apply(this, arguments); };`,
      loader: "js",
    }));
  },
};

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
  // Native addons (better-sqlite3; ssh2 under docker-modem) and pino's worker files are found by path
  // at run time; the X.509 library needs its Reflect polyfill loaded as its own module first.
  // dockerode is bundled (its BuildKit and ssh modules stay outside, loaded lazily: lazyCjs).
  external: ["better-sqlite3", "pino", "@peculiar/x509", "reflect-metadata", "tldts", ...LAZY_CJS.map((l) => l.real)],
  plugins: [lazyCjs],
  minifyWhitespace: true,
  minifySyntax: true,
  // CommonJS dependencies that call require() need one in an ES module.
  banner: { js: 'import { createRequire as __hangarCreateRequire } from "node:module";\nconst require = __hangarCreateRequire(import.meta.url);' },
  logLevel: "warning",
});

/**
 * `hangar policy lint` also as one CommonJS file, with V8's code cache beside it: Node 20 caches
 * no compiled ES module, and compiling zod, the YAML parser and the policy schema was a third
 * of lint's run. The cache is made here by running the bundle once (lint of a shipped policy),
 * so it holds the functions a lint runs too. See src/cli/cached-cjs.ts.
 */
const LINT_BUNDLE = "dist/cli/policy-lint.cjs";
await rm(`${LINT_BUNDLE}.v8`, { force: true });
await build({
  entryPoints: ["src/cli/commands/policy-lint.ts"],
  outfile: LINT_BUNDLE,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  external: ["tldts"],
  minifyWhitespace: true,
  minifySyntax: true,
  // Modules that find files next to themselves ask import.meta.url, which CommonJS lacks.
  define: { "import.meta.url": "__hangarMetaUrl" },
  banner: { js: 'const __hangarMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning",
});
{
  const { loadCjsWithCodeCache } = (await import(pathToFileURL(resolvePath("dist/cli/cached-cjs.js")).href)) as typeof CachedCjsModule;
  const lint = loadCjsWithCodeCache<{ policyLintCommand: { run: (argv: readonly string[], io: unknown) => Promise<number> } }>(resolvePath(LINT_BUNDLE), { useCache: false });
  if (lint === undefined) throw new Error(`${LINT_BUNDLE} was not written`);
  const quiet = { out: () => undefined, err: () => undefined, env: {} };
  const code = await lint.exports.policyLintCommand.run(["policies/everything.yaml"], quiet);
  if (code !== 0) throw new Error(`${LINT_BUNDLE}: linting policies/everything.yaml exited ${code}`);
  await writeFile(`${LINT_BUNDLE}.v8`, lint.createCache());
}

// The sidecar (scripts/sidecar-bundle.ts, shared with the benches).
await bundleSidecar("dist/sidecar/main.js");

/**
 * The stdio↔HTTP bridge (src/bridge): one file with every dependency inside, because it runs in
 * the server's image (mounted in Docker with runtime.transport http; copied from the sidecar
 * image by an init container in Kubernetes), where none of ours are installed.
 */
await rm("dist/bridge/main.js.map", { force: true });
await build({
  entryPoints: ["src/bridge/main.ts"],
  outfile: "dist/bridge/main.js",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  banner: { js: 'import { createRequire as __hangarCreateRequire } from "node:module";\nconst require = __hangarCreateRequire(import.meta.url);' },
  logLevel: "warning",
});
