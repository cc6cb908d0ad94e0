import { alignRows } from "../../baseline/text-table.js";
import { isHangarError } from "../../core/errors.js";
import type { Policy } from "../../core/policy/policy-schema.js";
import type { BuiltImage } from "../../images/build-progress.js";
import type { ImageSetResult } from "../../images/image-set.js";
import { formatIssues, loadPolicyFile } from "../../policy/index.js";
import { loadRuntimeConfig } from "../../runtime/runtime-config-loader.js";
import type { RuntimeConfig } from "../../runtime/runtime-config.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";

const imageJson = (image: BuiltImage): Record<string, unknown> => ({
  ref: image.ref,
  id: image.id,
  repoDigests: image.repoDigests,
  ...(image.contentHash !== undefined ? { contentHash: image.contentHash } : {}),
  reused: image.reused,
});

function summaryJson(policyFile: string, policy: Policy, result: ImageSetResult): Record<string, unknown> {
  const { server } = result;
  const npm = policy.server.npm;
  return {
    policy: policyFile,
    server: policy.name,
    images: {
      base: imageJson(result.base),
      sidecar: imageJson(result.sidecar),
      server: {
        ...imageJson(server),
        source: server.source,
        ...(npm !== undefined ? { package: `${npm.package}@${npm.version}` } : {}),
        ...(server.integrity !== undefined ? { integrity: server.integrity } : {}),
        ...(server.lockfile !== undefined ? { lockfile: server.lockfile } : {}),
        ...(server.entrypoint !== undefined ? { entrypoint: server.entrypoint } : {}),
        ...(server.cmd !== undefined ? { cmd: server.cmd } : {}),
      },
    },
  };
}

function summaryText(policy: Policy, result: ImageSetResult): string {
  const row = (role: string, image: BuiltImage): string[] => [role, image.ref, image.id, image.repoDigests[0] ?? "-", image.reused ? "reused" : "built"];
  const table = alignRows(
    [["IMAGE", "REF", "ID", "DIGEST", "STATUS"], row("base", result.base), row("sidecar", result.sidecar), row("server", result.server)],
    "",
  );
  const { server } = result;
  const npm = policy.server.npm;
  const source = npm !== undefined ? `npm ${npm.package}@${npm.version}` : server.source === "build" ? "built from its Dockerfile" : `local image ${server.ref}`;
  const details: string[][] = [];
  if (server.integrity !== undefined) details.push(["integrity", server.integrity]);
  if (server.lockfile !== undefined) details.push(["lockfile", server.lockfile]);
  const command = [...(server.entrypoint ?? []), ...(server.cmd ?? [])];
  if (command.length > 0) details.push(["command", command.join(" ")]);
  const noDigests = [result.base, result.sidecar, result.server].every((i) => i.repoDigests.length === 0);
  return [
    ...table,
    "",
    `server ${policy.name}: ${source}`,
    ...alignRows(details),
    ...(noDigests ? ["", "No registry digests: these images were built here and never pushed; each ID is the digest of its image config."] : []),
  ]
    .map((line) => `${line}\n`)
    .join("");
}

/** hangar.yaml problems are the operator's input: formatted like policy issues, exit 1. */
async function loadConfig(file: string | undefined, err: (text: string) => void): Promise<RuntimeConfig | undefined> {
  try {
    return await loadRuntimeConfig(file);
  } catch (e) {
    if (!isHangarError(e, "HANGAR_CONFIG_INVALID")) throw e;
    err(`${e.message}\n`);
    return undefined;
  }
}

export function createImageBuildCommand(deps: DockerVerbDeps = {}): Command {
  return defineCommand({
    name: "build",
    summary: "Build (or reuse) the base, sidecar and server images of a policy",
    usage: "hangar image build <policy> [--config hangar.yaml] [--json]",
    description:
      "Builds what the policy's sandbox needs, in order: the base image (from this host's node), the sidecar\n" +
      "(this package's dist), and the server (its npm package installed on the host at the pinned version and\n" +
      "integrity, its Dockerfile, or a local image). Each is skipped when an image built from the same inputs\n" +
      "exists. Nothing is ever pulled. Progress goes to stderr; the refs, ids, digests and the npm integrity\n" +
      "print at the end.",
    options: {
      config: { type: "string", valueName: "<hangar.yaml>", description: "Runtime config: the base and sidecar image tags (runtime.baseImage, runtime.sidecar.image)." },
      json: { type: "boolean", description: "Print a JSON summary on stdout instead of the table." },
    },
    positionals: { min: 1, max: 1 },
    details: "Exit status: 0 when every image is there, 1 when the policy or config is invalid, 2 on a build failure, a usage error or without a Docker engine.",
    async run({ values, positionals }, io) {
      const policyFile = positionals[0]!;
      const loaded = await loadPolicyFile(policyFile);
      if (!loaded.ok) {
        io.err(formatIssues(loaded.issues));
        return EXIT_FINDING;
      }
      const config = await loadConfig(values.config, io.err);
      if (config === undefined) return EXIT_FINDING;
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const result = await ctx.services.images.ensure({
          policy: loaded.policy,
          policyFile,
          baseImage: config.runtime.baseImage,
          sidecarImage: config.runtime.sidecar.image,
          onProgress: (p) => io.err(`${p.image}: ${p.phase}: ${p.message}\n`),
        });
        io.out(values.json === true ? `${JSON.stringify(summaryJson(policyFile, loaded.policy, result), null, 2)}\n` : summaryText(loaded.policy, result));
        return EXIT_OK;
      });
    },
  });
}

export const imageBuildCommand = createImageBuildCommand();
