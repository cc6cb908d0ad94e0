import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCjsWithCodeCache } from "../../src/cli/cached-cjs.js";

const dir = mkdtempSync(join(tmpdir(), "hangar-cjs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a CommonJS bundle with its V8 code cache", () => {
  it("runs the bundle as CommonJS (its own require, __filename), and uses a cache made from the same source", () => {
    const file = join(dir, "a.cjs");
    writeFileSync(file, 'const { basename } = require("node:path");\nexports.name = basename(__filename);\nexports.double = (n) => n * 2;\n');
    const first = loadCjsWithCodeCache<{ name: string; double: (n: number) => number }>(file);
    expect(first?.cacheUsed).toBe(false);
    expect(first?.exports.name).toBe("a.cjs");
    expect(first?.exports.double(21)).toBe(42);
    writeFileSync(`${file}.v8`, first!.createCache());
    const second = loadCjsWithCodeCache<{ double: (n: number) => number }>(file);
    expect(second?.cacheUsed).toBe(true);
    expect(second?.exports.double(4)).toBe(8);
    expect(loadCjsWithCodeCache(file, { useCache: false })?.cacheUsed).toBe(false);
  });

  it("a cache of another source is rejected by V8, and the bundle still runs from its own source", () => {
    const file = join(dir, "b.cjs");
    writeFileSync(file, "exports.v = 1;\n");
    writeFileSync(`${file}.v8`, loadCjsWithCodeCache(file)!.createCache());
    writeFileSync(file, "exports.v = 2; // edited after the cache was made\n");
    const edited = loadCjsWithCodeCache<{ v: number }>(file);
    expect(edited?.cacheUsed).toBe(false);
    expect(edited?.exports.v).toBe(2);
  });

  it("no file: undefined (running from src/, the module is imported instead)", () => {
    expect(loadCjsWithCodeCache(join(dir, "missing.cjs"))).toBeUndefined();
  });
});
