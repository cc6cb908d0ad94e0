import { join } from "node:path";
import type { CliIo } from "../../../src/cli/command.js";
import type { ScenarioVerbDeps } from "../../../src/cli/commands/scenario-verb.js";
import { NpmCliClient } from "../../../src/images/npm-client.js";
import { NpmStager } from "../../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../../src/images/server-image-builder.js";
import type { LaunchServices } from "../../../src/replay/launch-services.js";
import { loadRuntimeConfig } from "../../../src/runtime/runtime-config-loader.js";
import { Sandbox } from "../../../src/runtime/sandbox.js";
import type { Command } from "../../../src/cli/command.js";
import { captureIo } from "../../cli/capture-io.js";
import type { TestPki } from "../../support/tls.js";
import { ROOT, type DockerTestEnv, type RunningFixture } from "./docker-test-env.js";

/**
 * The scenario verbs (baseline record, replay, quarantine) as a test runs them: the CLI's
 * own commands, in-process, with launch services around this file's images (the sidecar
 * freshly compiled from src, the server built by the real builder), its egress network, its
 * run id (so cleanup finds every sandbox) and its temp folder. A verb given `--config` reads that
 * hangar.yaml with the real loader (paths relative to it), as the CLI does.
 */
export async function scenarioDeps(env: DockerTestEnv): Promise<ScenarioVerbDeps> {
  const config = await env.runtimeConfig();
  const stateDir = await env.stateRoot();
  const builder = new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), join(ROOT, ".stage/npm")));
  const services: LaunchServices = {
    config,
    logger: env.logger,
    sandboxes: new Sandbox({ engine: env.engine, logger: env.logger }),
    prepareImages: ({ policy, policyFile, onProgress }) => builder.build({ policy, policyFile, ...(onProgress ? { onProgress } : {}) }),
    run: env.run,
    stateDir,
  };
  return { openServices: async ({ configFile }) => (configFile === undefined ? services : { ...services, config: await loadRuntimeConfig(configFile) }) };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one command in-process, as a shell would see it. */
export async function runCommand(command: Command, argv: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const io: CliIo & { stdout: () => string; stderr: () => string } = captureIo(env);
  const code = await command.run(argv, io);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

export interface SeenRequest {
  readonly host: string | null;
  readonly url: string;
  readonly tls: boolean;
}

/**
 * An HTTP upstream of ours on port 80 of the egress network, under `alias`, counting requests.
 * With `tls`: HTTPS on 443 with that PKI's certificate, its count still read over HTTP (8080).
 */
export async function startUpstream(
  env: DockerTestEnv,
  alias: string,
  options: { tls?: TestPki } = {},
): Promise<RunningFixture & { count(): Promise<number>; seen(): Promise<SeenRequest[]> }> {
  const { tls } = options;
  const fixture = await env.runFixture("upstream.mjs", {
    name: alias.replace(/\./g, "-"),
    env: { NAME: alias, ...(tls !== undefined ? { PORT: "443", TLS_CERT: tls.cert, TLS_KEY: tls.key } : { PORT: "80" }) },
    sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
    // Answered by this file's resolver, the sidecars' only one.
    aliases: [alias],
  });
  const counter = async (): Promise<{ count: number; seen: SeenRequest[] }> => {
    const res = await fetch(`http://${fixture.ip}:${tls !== undefined ? 8080 : 80}/__count`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as { count: number; seen: SeenRequest[] };
  };
  const count = async (): Promise<number> => (await counter()).count;
  const seen = async (): Promise<SeenRequest[]> => (await counter()).seen;
  // Serving before the first test counts on it.
  for (let i = 0; ; i++) {
    try {
      await count();
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { ...fixture, count, seen };
}
