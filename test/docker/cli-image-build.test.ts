import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImageBuildCommand } from "../../src/cli/commands/image-build.js";
import { defineGroup } from "../../src/cli/define-command.js";
import type { OpenDockerContext } from "../../src/cli/docker-context.js";
import { DockerContainerEngine } from "../../src/docker/docker-container-engine.js";
import { ImageSet } from "../../src/images/image-set.js";
import { SidecarImageBuilder, type SidecarImageOptions } from "../../src/images/sidecar-image-builder.js";
import type { BuiltImage } from "../../src/images/build-progress.js";
import { silentLogger } from "../../src/log.js";
import { loadPolicyFile } from "../../src/policy/index.js";
import { createRuntimeServices } from "../../src/runtime/runtime-services.js";
import { hangar } from "../cli/capture-io.js";
import { ROOT } from "./support/docker-test-env.js";
import { ensureTestSidecarImage, TEST_SIDECAR_IMAGE } from "./support/sidecar-image.js";

/**
 * `hangar image build` on the real builders. The sidecar is built from the test suite's
 * compiled dist (a checkout has no dist/ until `npm run build`), so with the suite's
 * sidecar image present every step is a reuse and the test takes seconds; the npm server
 * is the one the policy pins, staged on the host.
 */

const DIST = process.env["HANGAR_TEST_SIDECAR_DIST"] !== undefined ? resolve(ROOT, process.env["HANGAR_TEST_SIDECAR_DIST"]) : join(ROOT, ".stage/test-dist");

/** The CLI's own composition, but the sidecar comes from the test dist. */
const openContext: OpenDockerContext = async () => {
  const docker = new Dockerode();
  const logger = silentLogger();
  const services = createRuntimeServices({ docker, logger });
  await services.engine.ping();
  const sidecarImages = new (class extends SidecarImageBuilder {
    override ensure(options: SidecarImageOptions = {}): Promise<BuiltImage> {
      return super.ensure({ ...options, distDir: DIST });
    }
  })(services.engine, ROOT);
  return { docker, logger, engine: services.engine, services: { ...services, sidecarImages, images: new ImageSet(services.baseImages, sidecarImages, services.serverImages) } };
};

/** `hangar image build ...` through the CLI's entry, with the injected context. */
const imageCommand = defineGroup({
  name: "image",
  summary: "image verbs",
  usage: "hangar image <command> [options]",
  description: "",
  commands: [createImageBuildCommand({ openContext })],
});
const run = (argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> => hangar(["image", ...argv], { commands: [imageCommand] });

let dir: string;
let config: string;
const POLICY = join(ROOT, "policies/everything.yaml");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-image-build-"));
  config = join(dir, "hangar.yaml");
  await writeFile(config, `runtime:\n  sidecar:\n    image: ${TEST_SIDECAR_IMAGE}\n`);
  // The suite's sidecar image from the same dist: the build below finds it current.
  await ensureTestSidecarImage(new DockerContainerEngine(new Dockerode()), ROOT);
}, 600_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("hangar image build", () => {
  it("builds or reuses base, sidecar and server, shows progress on stderr, and prints refs, ids and the npm integrity", async () => {
    const loaded = await loadPolicyFile(POLICY);
    if (!loaded.ok) throw new Error("policies/everything.yaml is invalid");
    const integrity = loaded.policy.server.npm?.integrity;

    const result = await run(["build", POLICY, "--config", config]);
    expect(result.stderr).toMatch(/^hangar\/base:local: check: /m);
    expect(result.stderr).toMatch(new RegExp(`^${TEST_SIDECAR_IMAGE}: (reuse|done): `, "m"));
    expect(result.stderr).toMatch(/^@modelcontextprotocol\/server-everything@2026\.8\.31: verify: .* integrity sha512-/m);
    expect(result.code).toBe(0);

    const docker = new Dockerode();
    const id = async (ref: string): Promise<string> => (await docker.getImage(ref).inspect()).Id;
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^IMAGE +REF +ID +DIGEST +STATUS$/);
    expect(lines[1]).toMatch(new RegExp(`^base +hangar/base:local +${await id("hangar/base:local")} +- +(reused|built)$`));
    // Built only if another suite recompiled the test dist meanwhile.
    expect(lines[2]).toMatch(new RegExp(`^sidecar +${TEST_SIDECAR_IMAGE} +${await id(TEST_SIDECAR_IMAGE)} +- +(reused|built)$`));
    const serverRef = /^server +(hangar\/server-everything:[0-9a-f]{12}) /.exec(lines[3] ?? "")?.[1];
    expect(serverRef).toBeDefined();
    expect(lines[3]).toContain(await id(serverRef!));
    expect(result.stdout).toContain("server everything: npm @modelcontextprotocol/server-everything@2026.8.31\n");
    expect(result.stdout).toMatch(new RegExp(`^ {2}integrity +${integrity!.replace(/[+/]/g, "\\$&")}$`, "m"));
    expect(result.stdout).toMatch(/^ {2}lockfile +\/.*package-lock\.json$/m);
    expect(result.stdout).toMatch(/^ {2}command +node \/app\/node_modules\/@modelcontextprotocol\/server-everything\/.* stdio$/m);
    expect(result.stdout).toContain("No registry digests");
  });

  it("prints a JSON summary with --json (progress still on stderr)", async () => {
    const result = await run(["build", POLICY, "--config", config, "--json"]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("hangar/base:local: ");
    const summary = JSON.parse(result.stdout) as {
      server: string;
      images: Record<string, { ref: string; id: string; repoDigests: string[]; reused: boolean; integrity?: string; package?: string; source?: string }>;
    };
    expect(summary.server).toBe("everything");
    expect(summary.images["base"]).toMatchObject({ ref: "hangar/base:local", id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), repoDigests: [], reused: true });
    expect(summary.images["sidecar"]).toMatchObject({ ref: TEST_SIDECAR_IMAGE, id: expect.stringMatching(/^sha256:/) });
    expect(summary.images["server"]).toMatchObject({
      source: "npm",
      package: "@modelcontextprotocol/server-everything@2026.8.31",
      integrity: expect.stringMatching(/^sha512-/),
      reused: true,
    });
  });

  it("reports policy and config problems as formatted issues, exit 1, before touching Docker", async () => {
    const bad = await run(["build", join(ROOT, "test/fixtures/policies/invalid-cidr.yaml")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid-cidr\.yaml:10:13: egress\.allow\[1\]\.cidr: "10\.0\.0\.0\/33" is not a valid CIDR\n$/);
    const badConfig = join(dir, "bad.yaml");
    await writeFile(badConfig, "runtime:\n  egresNetwork: x\n");
    const config = await run(["build", POLICY, "--config", badConfig]);
    expect(config.code).toBe(1);
    expect(config.stderr).toMatch(/bad\.yaml:2:3: runtime: .*egresNetwork/);
    expect(config.stdout).toBe("");
  });
});
