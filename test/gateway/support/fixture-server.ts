import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * How tests run the fixture MCP server (test/fixtures/mcp/fixture-server.ts). Through
 * tsx it takes about a second to start, mostly loading the SDK module by module; bundled
 * into one file (esbuild, which tsx brings along) it starts in a fifth of that, which
 * matters for tests that restart it. The bundle is cached in the temp folder by content.
 */
export const FIXTURE_SOURCE = fileURLToPath(new URL("../../fixtures/mcp/fixture-server.ts", import.meta.url));

let cached: string[] | undefined;

export async function fixtureServerCommand(): Promise<string[]> {
  if (cached !== undefined) return cached;
  const source = readFileSync(FIXTURE_SOURCE);
  const out = join(tmpdir(), `hangar-fixture-mcp-${createHash("sha256").update(source).digest("hex").slice(0, 16)}.mjs`);
  if (!existsSync(out)) {
    try {
      const esbuild = await import("esbuild");
      const temp = `${out}.${process.pid}.tmp`;
      await esbuild.build({
        entryPoints: [FIXTURE_SOURCE],
        outfile: temp,
        bundle: true,
        format: "esm",
        platform: "node",
        logLevel: "silent",
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      });
      renameSync(temp, out);
    } catch {
      // No esbuild: run the source through tsx (slower start, same server).
      cached = [process.execPath, "--import", import.meta.resolve("tsx"), FIXTURE_SOURCE];
      return cached;
    }
  }
  cached = [process.execPath, out];
  return cached;
}

