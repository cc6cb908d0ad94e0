import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { hasRuntimeCode } from "../../src/docker/runtime-error.js";
import type { BuildProgress } from "../../src/images/build-progress.js";
import { BaseImageBuilder } from "../../src/images/base-image-builder.js";
import { NpmCliClient } from "../../src/images/npm-client.js";
import { NpmStager } from "../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../src/images/server-image-builder.js";
import { SidecarImageBuilder } from "../../src/images/sidecar-image-builder.js";
import { DockerTestEnv, FIXTURES_IMAGE, realSidecarSourceExists, ROOT } from "./support/docker-test-env.js";
import { runToCompletion } from "./support/run-to-completion.js";

const SEMVER = { package: "semver", version: "7.6.3", integrity: "sha512-oVekP1cKtI+CTDvHWYFUcMtsK/00wmAEfyqKfNdARm8u1wNVhSgaX7A8d4UuIlUI5e84iEwOhs7ZPYRmzU9U6A==" };
/** Well-formed, but the digest of something else. */
const WRONG_INTEGRITY = `sha512-${Buffer.alloc(64, 7).toString("base64")}`;

let env: DockerTestEnv;
let stageRoot: string;
let builder: ServerImageBuilder;
const images: string[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
  stageRoot = await mkdtemp(join(tmpdir(), "hangar-stage-"));
  builder = new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), stageRoot));
}, 600_000);

afterAll(async () => {
  for (const ref of images) await env?.engine.removeImage(ref);
  await env?.cleanup();
  await rm(stageRoot, { recursive: true, force: true });
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("base image", () => {
  it("is reused when it was built for this node version, and runs as the non-root user", async () => {
    const progress: BuildProgress[] = [];
    const base = await new BaseImageBuilder(env.engine, ROOT).ensure({ onProgress: (p) => progress.push(p) });
    expect(base.reused).toBe(true);
    expect(progress.map((p) => p.phase)).toContain("reuse");
    const out = await runToCompletion(env, base.id, ["node", "-e", "console.log(process.getuid(), process.version)"]);
    expect(out.stdout.trim()).toBe(`10001 ${process.version}`);
  });
});

describe("sidecar image", () => {
  // The suite's setup already built it with SidecarImageBuilder from a fresh compile of src
  // (a second build here would cost ~20 s of the legacy builder writing node_modules).
  it.runIf(realSidecarSourceExists())("ships dist plus production node_modules only, runs as 10001, and starts the sidecar entry point", async () => {
    const image = await env.engine.inspectImage(env.sidecarImage);
    expect(image?.labels["hangar.content"]).toMatch(/^[0-9a-f]{64}$/);
    expect(image?.labels).toMatchObject({ "hangar.managed": "true", "hangar.role": "image" });
    const help = await runToCompletion(env, env.sidecarImage, undefined, ["--help"]);
    expect(help).toMatchObject({ exitCode: 0 });
    expect(help.stdout).toContain("usage: hangar-sidecar");
    const probe = "console.log(process.getuid(), require.resolve('/app/node_modules/yaml'), (() => { try { return require.resolve('/app/node_modules/vitest'); } catch { return 'no vitest'; } })())";
    const inside = await runToCompletion(env, env.sidecarImage, ["node", "-e", probe]);
    expect(inside.stdout.trim()).toMatch(/^10001 \/app\/node_modules\/yaml\/\S+ no vitest$/);
  });

  it("refuses to build without a compiled sidecar, and reuses an image whose inputs did not change", async () => {
    const sidecars = new SidecarImageBuilder(env.engine, ROOT);
    const missing = await sidecars.ensure({ tag: "hangar/sidecar:never", distDir: join(stageRoot, "no-dist") }).catch((e: unknown) => e);
    expect(hasRuntimeCode(missing, "HANGAR_IMAGE_BUILD")).toBe(true);
    expect((missing as Error).message).toContain('run "npm run build"');
    if (env.realSidecar) {
      const dist = process.env["HANGAR_TEST_SIDECAR_DIST"] ?? ".stage/test-dist";
      const again = await sidecars.ensure({ tag: env.sidecarImage, distDir: resolve(ROOT, dist) });
      expect(again).toMatchObject({ reused: true, id: (await env.engine.inspectImage(env.sidecarImage))!.id });
    }
  });
});

describe("npm server images", () => {
  const policy = (name: string, npm: Record<string, string>) =>
    PolicySchema.parse({ version: 1, name, server: { npm, args: ["1.2.3-rc.1"] } });

  it("stages the exact version with scripts disabled, verifies integrity, records the lockfile, and runs the bin", async () => {
    const progress: BuildProgress[] = [];
    const image = await builder.build({ policy: policy(`npm-${env.run}`, SEMVER), policyFile: join(ROOT, "x.yaml"), onProgress: (p) => progress.push(p) });
    images.push(image.ref);
    expect(image).toMatchObject({ source: "npm", integrity: SEMVER.integrity, reused: false, entrypoint: ["node", "/app/node_modules/semver/bin/semver.js"] });
    const lock = JSON.parse(await readFile(image.lockfile!, "utf8")) as { packages: Record<string, { version: string; integrity: string }> };
    expect(lock.packages["node_modules/semver"]).toMatchObject({ version: "7.6.3", integrity: SEMVER.integrity });
    expect(progress.some((p) => p.phase === "verify")).toBe(true);

    const out = await runToCompletion(env, image.id, [...image.entrypoint!], [...image.cmd!]);
    expect(out.stdout.trim()).toBe("1.2.3-rc.1");

    const again = await builder.build({ policy: policy(`npm-${env.run}`, SEMVER), policyFile: join(ROOT, "x.yaml") });
    expect(again).toMatchObject({ reused: true, id: image.id });
  }, 300_000);

  it("refuses a package whose registry integrity differs from the policy's pin, before installing anything", async () => {
    const wrong = policy(`npm-bad-${env.run}`, { ...SEMVER, version: "7.6.2", integrity: WRONG_INTEGRITY });
    const err = await builder.build({ policy: wrong, policyFile: join(ROOT, "x.yaml") }).catch((e: unknown) => e);
    expect(hasRuntimeCode(err, "HANGAR_INTEGRITY_MISMATCH")).toBe(true);
    expect((err as Error).message).toMatch(/semver@7\.6\.2: the policy pins integrity sha512-BwcH.*but the registry publishes sha512-/);
    expect(await stat(join(stageRoot, "semver-7.6.2")).catch(() => undefined)).toBeUndefined();
  }, 120_000);
});

describe("Dockerfile and image servers", () => {
  it("builds server.build with --build-arg BASE and reuses it when the context is unchanged", async () => {
    const policyFile = join(ROOT, "test/fixtures/images/policy.yaml");
    const policy = PolicySchema.parse({
      version: 1,
      name: `built-${env.run}`,
      server: { build: { context: ".", dockerfile: "Dockerfile" }, command: ["node", "/fixtures/upstream.mjs"] },
    });
    const image = await builder.build({ policy, policyFile });
    images.push(image.ref);
    expect(image).toMatchObject({ source: "build", reused: false, entrypoint: ["node", "/fixtures/upstream.mjs"] });
    expect(image.ref).toMatch(new RegExp(`^hangar/server-built-${env.run}:[0-9a-f]{12}$`));
    expect((await builder.build({ policy, policyFile })).reused).toBe(true);
  }, 120_000);

  it("uses a local image as is, and refuses one whose id differs from the pinned digest", async () => {
    const fixtures = await env.engine.inspectImage(FIXTURES_IMAGE);
    const pinned = (digest: string) =>
      PolicySchema.parse({ version: 1, name: `img-${env.run}`, server: { image: { ref: FIXTURES_IMAGE, digest } } });
    const ok = await builder.build({ policy: pinned(fixtures!.id), policyFile: join(ROOT, "x.yaml") });
    expect(ok).toMatchObject({ source: "image", id: fixtures!.id });
    const err = await builder.build({ policy: pinned(`sha256:${"0".repeat(64)}`), policyFile: join(ROOT, "x.yaml") }).catch((e: unknown) => e);
    expect(hasRuntimeCode(err, "HANGAR_INTEGRITY_MISMATCH")).toBe(true);
    const missing = PolicySchema.parse({ version: 1, name: `img-${env.run}`, server: { image: { ref: "hangar-test/absent:never" } } });
    expect(hasRuntimeCode(await builder.build({ policy: missing, policyFile: "x" }).catch((e: unknown) => e), "HANGAR_IMAGE_MISSING")).toBe(true);
  });
});
