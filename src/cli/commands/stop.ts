import type { ContainerEngine } from "../../docker/container-engine.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { listSandboxes, noSandboxMessage, type SandboxEntry } from "./sandbox-inventory.js";

/** Seconds each container gets after SIGTERM (the sidecar drains its connections), as in StartedSandbox.stop(). */
const SERVER_STOP_SECONDS = 3;
const SIDECAR_STOP_SECONDS = 5;

/** Same order as StartedSandbox's teardown: server, sidecar, then the network. Returns what failed. */
async function stopSandbox(engine: ContainerEngine, entry: SandboxEntry): Promise<string[]> {
  const failures: string[] = [];
  const attempt = async (what: string, op: () => Promise<unknown>): Promise<void> => {
    try {
      await op();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
    }
  };
  const { serverContainer: server, sidecar, network } = entry;
  if (server !== undefined) await attempt(`stop ${server.name}`, () => engine.stopContainer(server.id, SERVER_STOP_SECONDS));
  if (sidecar !== undefined) await attempt(`stop ${sidecar.name}`, () => engine.stopContainer(sidecar.id, SIDECAR_STOP_SECONDS));
  if (server !== undefined) await attempt(`remove ${server.name}`, () => engine.removeContainer(server.id));
  if (sidecar !== undefined) await attempt(`remove ${sidecar.name}`, () => engine.removeContainer(sidecar.id));
  if (network !== undefined) await attempt(`remove ${network.name}`, () => engine.removeNetwork(network.id));
  return failures;
}

export function createStopCommand(deps: DockerVerbDeps = {}): Command {
  return defineCommand({
    name: "stop",
    summary: "Stop and remove the sandbox(es) of a server",
    usage: "hangar stop <server> [--run <id>]",
    description:
      "Stops the server container, then the sidecar (SIGTERM: it drains), and removes both and the sandbox\n" +
      "network, for every sandbox of <server> (the policy's name) or only the run given. A `hangar run` still\n" +
      "bridging the sandbox sees its server exit and ends. A <server> (or run) with no sandbox is an error, so\n" +
      "that a misspelt name is not mistaken for a stopped server; the message names the closest one.",
    options: {
      run: { type: "string", valueName: "<id>", description: "Only this run (see hangar ps)." },
    },
    positionals: { min: 1, max: 1 },
    details: "Exit status: 0 when stopped, 1 when no sandbox matches or a step failed, 2 on a usage error or without a Docker engine.",
    async run({ values, positionals }, io) {
      const server = positionals[0]!;
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const entries = await listSandboxes(ctx.engine, { server, ...(values.run !== undefined ? { run: values.run } : {}) });
        if (entries.length === 0) {
          io.err(`hangar: ${await noSandboxMessage(ctx.engine, server, values.run)}\n`);
          return EXIT_FINDING;
        }
        let failed = 0;
        for (const entry of entries) {
          const failures = await stopSandbox(ctx.engine, entry);
          if (failures.length > 0) {
            failed += 1;
            for (const f of failures) io.err(`hangar: ${entry.server} (run ${entry.run}): ${f}\n`);
            continue;
          }
          const owner = entry.ownerState === "alive" ? `; its owner ${entry.owner} is still running and will see it stop` : "";
          io.out(`stopped ${entry.server} (run ${entry.run})${owner}\n`);
        }
        return failed > 0 ? EXIT_FINDING : EXIT_OK;
      });
    },
  });
}

export const stopCommand = createStopCommand();
