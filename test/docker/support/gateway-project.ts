import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Dockerode from "dockerode";
import { stringify } from "yaml";
import { startDemoUpstreams, type DemoUpstreams } from "../../../src/cli/demo-upstreams.js";
import { selectorTerms } from "../../../src/docker/labels.js";
import type { FleetStatus } from "../../../src/gateway/fleet-status.js";
import { NpmCliClient } from "../../../src/images/npm-client.js";
import { NpmStager } from "../../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../../src/images/server-image-builder.js";
import { loadPolicyFile } from "../../../src/policy/index.js";
import { Pruner } from "../../../src/runtime/pruner.js";
import { hangar } from "../../cli/capture-io.js";
import { approve } from "../../gateway/support/harness.js";
import { ROOT, type DockerTestEnv } from "./docker-test-env.js";
import { TEST_SIDECAR_IMAGE } from "./sidecar-image.js";

/**
 * A temporary Hangar project for the gateway's Docker tests: hangar.yaml with the two
 * reference servers (copies of policies/everything.yaml and policies/filesystem.yaml
 * renamed `<name>-<run>`, so a concurrent `hangar run policies/everything.yaml` does not
 * conflict with them), a data folder for the filesystem server, this file's own egress
 * network with the demo upstreams on it, signing keys, and both servers approved through
 * the CLI. `hangar serve` runs as a real process through tsx.
 */

export const MAIN = fileURLToPath(new URL("../../../src/cli/main.ts", import.meta.url));
/** The compiled sidecar the suite's sidecar image is built from (see sidecar-image.ts). */
const SIDECAR_DIST = process.env["HANGAR_TEST_SIDECAR_DIST"] !== undefined ? resolve(ROOT, process.env["HANGAR_TEST_SIDECAR_DIST"]) : join(ROOT, ".stage/test-dist");
export const DATA_FILE_TEXT = "hello from the sandboxed filesystem\n";

export interface GatewayProject {
  readonly dir: string;
  readonly config: string;
  readonly auditPath: string;
  /** Server names. */
  readonly everything: string;
  readonly filesystem: string;
  readonly upstreams: DemoUpstreams;
  /** `node` arguments that run `hangar <args>` from source. */
  hangarArgs(...args: string[]): string[];
  /** The environment of a `hangar serve` child. */
  childEnv(): Record<string, string>;
  status(): Promise<{ running: boolean; status: FleetStatus }>;
  /** Hangar-labelled containers and networks of this project's servers still present. */
  leftovers(): Promise<string[]>;
  /** Removes everything (also what a failed test left); returns what was still there. */
  cleanup(): Promise<string[]>;
}

export async function openGatewayProject(env: DockerTestEnv, options: { gateway?: Record<string, unknown> } = {}): Promise<GatewayProject> {
  const dir = join(await env.stateRoot(), "project");
  await mkdir(join(dir, "policies/data"), { recursive: true });
  const everything = `everything-${env.run}`;
  const filesystem = `filesystem-${env.run}`;
  // The sandbox user (10001) reads the mount: the folder and its file must be readable by others.
  await chmod(join(dir, "policies/data"), 0o755);
  await writeFile(join(dir, "policies/data/hello.txt"), DATA_FILE_TEXT, { mode: 0o644 });
  const copyPolicy = async (from: string, name: string): Promise<string> => {
    const text = (await readFile(join(ROOT, "policies", from), "utf8")).replace(/^name: .*$/m, `name: ${name}`);
    const file = join(dir, "policies", `${name}.yaml`);
    await writeFile(file, text);
    return file;
  };
  const policyFiles = [await copyPolicy("everything.yaml", everything), await copyPolicy("filesystem.yaml", filesystem)];

  const egress = await env.egressNetwork();
  const upstreams = await startDemoUpstreams(env.engine, { network: egress.name, run: env.run });
  // The sidecars ask this file's resolver, not the engine's (which knows the demo's Docker aliases).
  await env.registerUpstreams([upstreams.allowed, upstreams.evil]);
  const tagged = await preTagServerImages(env, [
    ["everything.yaml", everything],
    ["filesystem.yaml", filesystem],
  ]);

  const config = join(dir, "hangar.yaml");
  await writeFile(
    config,
    stringify({
      version: 1,
      servers: policyFiles.map((f) => `policies/${f.split("/").at(-1)}`),
      identity: "local-user",
      audit: { path: ".hangar/audit.db" },
      runtime: {
        egressNetwork: egress.name,
        // The demo upstreams live on this private network; the sidecar may dial them.
        trustedUpstreamRanges: egress.subnets.map((s) => s.subnet),
        upstreamResolvers: await env.upstreamResolvers(),
        sidecar: { image: TEST_SIDECAR_IMAGE },
      },
      rbac: { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } },
      gateway: {
        startTimeoutMs: 60_000,
        callTimeoutMs: 30_000,
        healthIntervalMs: 5_000,
        idleTimeoutMs: 0,
        // DEGRADED lasts at least 2 s, longer than the status file's 1 s rewrite period.
        restart: { initialDelayMs: 2_500, maxDelayMs: 5_000, maxAttempts: 5 },
        ...options.gateway,
      },
    }),
  );
  const init = await hangar(["init", "--dir", join(dir, ".hangar")]);
  if (init.code !== 0) throw new Error(`hangar init failed: ${init.stderr}`);
  await approve(config, policyFiles);

  const labelsOf = (server: string): string[] => selectorTerms({ server });
  const leftovers = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const server of [everything, filesystem]) {
      out.push(...(await env.engine.listContainers({ labels: labelsOf(server) })).map((c) => `container ${c.name}`));
      out.push(...(await env.engine.listNetworks({ labels: labelsOf(server) })).map((n) => `network ${n.name}`));
    }
    return out;
  };

  return {
    dir,
    config,
    auditPath: join(dir, ".hangar/audit.db"),
    everything,
    filesystem,
    upstreams,
    hangarArgs: (...args) => ["--import", import.meta.resolve("tsx"), MAIN, ...args],
    childEnv: () => ({ ...(process.env as Record<string, string>), HANGAR_SIDECAR_DIST: SIDECAR_DIST, HANGAR_LOG_LEVEL: process.env["HANGAR_LOG_LEVEL"] ?? "info" }),
    status: async () => {
      const run = await hangar(["status", "--config", config, "--json"]);
      return JSON.parse(run.stdout) as { running: boolean; status: FleetStatus };
    },
    leftovers,
    cleanup: async () => {
      const left = await leftovers();
      const pruner = new Pruner(env.engine);
      for (const server of [everything, filesystem]) await pruner.prune({ server });
      await upstreams.stop();
      for (const tag of tagged) await env.engine.removeImage(tag, { force: false }).catch(() => undefined);
      return left;
    },
  };
}

/**
 * The renamed servers' images are the reference servers' images under another tag (the
 * tag holds the server name; the content hash does not), so `hangar serve` finds them
 * built. Built here first when missing, so no start waits on npm and docker build.
 */
async function preTagServerImages(env: DockerTestEnv, servers: readonly (readonly [string, string])[]): Promise<string[]> {
  const builder = new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), join(ROOT, ".stage/npm")));
  const docker = new Dockerode();
  const tags: string[] = [];
  for (const [file, name] of servers) {
    const policyFile = join(ROOT, "policies", file);
    const loaded = await loadPolicyFile(policyFile);
    if (!loaded.ok) throw new Error(`${file} does not load`);
    const image = await builder.build({ policy: loaded.policy, policyFile });
    const tag = (image.contentHash ?? "").slice(0, 12);
    await docker.getImage(image.id).tag({ repo: `hangar/server-${name}`, tag });
    tags.push(`hangar/server-${name}:${tag}`);
  }
  return tags;
}

/** A `hangar serve --http` child: its URL once it listens, its stderr, and a SIGTERM stop that returns the exit code. */
export interface ServeHttp {
  readonly url: string;
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<number | null>;
}

export async function startServeHttp(project: Pick<GatewayProject, "config" | "hangarArgs" | "childEnv">): Promise<ServeHttp> {
  const child = spawn(process.execPath, project.hangarArgs("serve", "--config", project.config, "--http", "127.0.0.1:0"), { stdio: ["ignore", "ignore", "pipe"], env: project.childEnv() });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = once(child, "exit") as Promise<[number | null]>;
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while ((url = /serving MCP on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr)?.[1]) === undefined) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`hangar serve --http did not listen: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return (await exited)[0];
    },
  };
}
