import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/**
 * A CommonJS bundle loaded with V8's code cache beside it (`<file>.v8`, made at build time by
 * scripts/bundle-cli.ts). Node 20 has no compile cache for ES modules, and for the cheapest
 * verbs (`hangar policy lint`) compiling zod, the YAML parser and the policy schema was a
 * third of the run. V8 checks the cache against the source and its own version and flags; a
 * cache it rejects (another node, an edited file) only costs the compile it would have saved.
 * Nothing is written at run time: dist may be read-only.
 */
export interface CompiledCjs<T> {
  readonly exports: T;
  /** Whether V8 used the cache file (false: no file, or rejected). */
  readonly cacheUsed: boolean;
  /** The code cache as it is now: after a run, it holds the functions that run compiled too. */
  createCache(): Buffer;
}

/** The bundle's exports, or undefined when there is no such file (running from src/). */
export function loadCjsWithCodeCache<T>(file: string, options: { readonly useCache?: boolean } = {}): CompiledCjs<T> | undefined {
  if (!existsSync(file)) return undefined;
  const source = readFileSync(file, "utf8");
  const cacheFile = `${file}.v8`;
  const cachedData = options.useCache !== false && existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new Script(`${WRAPPER_HEAD}${source}${WRAPPER_TAIL}`, { filename: file, ...(cachedData !== undefined ? { cachedData } : {}) });
  const module = { exports: {} as T };
  const run = script.runInThisContext() as (exports: T, require: NodeJS.Require, module: { exports: T }, filename: string, dir: string) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, cacheUsed: cachedData !== undefined && script.cachedDataRejected !== true, createCache: () => script.createCachedData() };
}

/** Node's own CommonJS wrapper (Module.wrap, which node:module exports only as a property of its default). */
const WRAPPER_HEAD = "(function (exports, require, module, __filename, __dirname) { ";
const WRAPPER_TAIL = "\n});";
