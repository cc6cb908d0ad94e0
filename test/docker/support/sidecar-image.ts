import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ContainerEngine } from "../../../src/docker/container-engine.js";
import type { BuiltImage } from "../../../src/images/build-progress.js";
import { contentHash } from "../../../src/images/content-hash.js";
import { runCommand } from "../../../src/images/run-command.js";
import { SidecarImageBuilder } from "../../../src/images/sidecar-image-builder.js";

export const TEST_SIDECAR_IMAGE = "hangar/sidecar:test";

/**
 * The real sidecar image. By default from a fresh compile of src into .stage/test-dist (a
 * stale dist/ never hides a change); HANGAR_TEST_SIDECAR_DIST=<dir> uses an existing build
 * instead (CI: dist/, right after `npm run build`). Keyed by a hash of its inputs:
 * unchanged sources, no compile and no image build.
 */
export async function ensureTestSidecarImage(engine: ContainerEngine, root: string): Promise<BuiltImage> {
  const prebuilt = process.env["HANGAR_TEST_SIDECAR_DIST"];
  const distDir = prebuilt !== undefined ? resolve(root, prebuilt) : join(root, ".stage/test-dist");
  const inputs = await contentHash([
    prebuilt !== undefined ? { kind: "tree", name: "dist", dir: distDir } : { kind: "tree", name: "src", dir: join(root, "src") },
    { kind: "text", name: "lock", value: await readFile(join(root, "package-lock.json"), "utf8") },
    { kind: "text", name: "dockerfile", value: await readFile(join(root, "images/sidecar/Dockerfile"), "utf8") },
  ]);
  const record = join(root, ".stage/test-sidecar.json");
  const previous = JSON.parse(await readFile(record, "utf8").catch(() => "{}")) as { inputs?: string; image?: BuiltImage };
  if (previous.inputs === inputs && previous.image !== undefined) {
    const existing = await engine.inspectImage(TEST_SIDECAR_IMAGE);
    if (existing?.id === previous.image.id) return { ...previous.image, reused: true };
  }
  if (prebuilt === undefined) {
    // tsc emits even when an unrelated file in progress has a type error; only the output matters here.
    await runCommand(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", distDir], {
      errorCode: "HANGAR_IMAGE_BUILD",
      cwd: root,
    }).catch((err: unknown) => {
      if (!existsSync(join(distDir, "sidecar/main.js"))) throw err;
    });
  }
  const image = await new SidecarImageBuilder(engine, root).ensure({ tag: TEST_SIDECAR_IMAGE, distDir });
  await writeFile(record, JSON.stringify({ inputs, image }));
  return image;
}
