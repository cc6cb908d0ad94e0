import type { ContainerEngine } from "../../docker/container-engine.js";
import { EXIT_FINDING, EXIT_OK, EXIT_USAGE, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { formatRuns, listSandboxes, noSandboxMessage, type SandboxEntry } from "./sandbox-inventory.js";

/**
 * Seconds each container gets after SIGTERM (the sidecar drains its connections). Unhurried,
 * unlike StartedSandbox.stop(): no MCP client is waiting to kill this process.
 */
const SERVER_STOP_SECONDS = 3;
const SIDECAR_STOP_SECONDS = 5;

/** Server, sidecar, then the network (Docker refuses it while a container is attached). Returns what failed. */
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
    usage: "hangar stop <server|run> [--run <id>] [--all] [--json]",
    description:
      "Stops the server container, then the sidecar (SIGTERM: it drains), and removes both and the sandbox\n" +
      "network, of the sandbox named by a run id, or of <server> (the policy's name). Several clients of one\n" +
      "policy each have a sandbox of their own: when <server> has several, name one by its run (see hangar ps),\n" +
      "or stop them all with --all. A `hangar run` still bridging the sandbox sees its server exit and ends.\n" +
      "A name (or run) with no sandbox is an error, so that a misspelt name is not mistaken for a stopped\n" +
      "server; the message names the closest one.",
    options: {
      run: { type: "string", valueName: "<id>", description: "Only this run (see hangar ps)." },
      all: { type: "boolean", description: "Stop every sandbox of <server> when it has several." },
      json: { type: "boolean", description: "Print { stopped, failed } as JSON." },
    },
    positionals: { min: 1, max: 1 },
    details:
      "Exit status: 0 when stopped, 1 when no sandbox matches or a step failed, 2 on a usage error, when a name has several\n" +
      "sandboxes and neither a run nor --all says which, or without a Docker engine.",
    async run({ values, positionals }, io) {
      const target = positionals[0]!;
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const entries = await listSandboxes(ctx.engine, { target, ...(values.run !== undefined ? { run: values.run } : {}) });
        if (entries.length === 0) {
          io.err(`hangar: ${await noSandboxMessage(ctx.engine, target, values.run)}\n`);
          return EXIT_FINDING;
        }
        // Another client's sandbox is not to be stopped by accident.
        if (entries.length > 1 && values.all !== true) {
          io.err(`hangar: ${target} has ${entries.length} sandboxes; stop one by its run (hangar stop <run>), or all of them with --all:\n${formatRuns(entries)}\n`);
          return EXIT_USAGE;
        }
        const stopped: { server: string; run: string; owner?: string; ownerAlive: boolean }[] = [];
        const failed: { server: string; run: string; errors: string[] }[] = [];
        for (const entry of entries) {
          const failures = await stopSandbox(ctx.engine, entry);
          if (failures.length > 0) {
            failed.push({ server: entry.server, run: entry.run, errors: failures });
            for (const f of failures) io.err(`hangar: ${entry.server} (run ${entry.run}): ${f}\n`);
            continue;
          }
          stopped.push({ server: entry.server, run: entry.run, ...(entry.owner !== undefined ? { owner: entry.owner } : {}), ownerAlive: entry.ownerState === "alive" });
          const owner = entry.ownerState === "alive" ? `; its owner ${entry.owner} is still running and will see it stop` : "";
          if (values.json !== true) io.out(`stopped ${entry.server} (run ${entry.run})${owner}\n`);
        }
        if (values.json === true) io.out(`${JSON.stringify({ stopped, failed }, null, 2)}\n`);
        return failed.length > 0 ? EXIT_FINDING : EXIT_OK;
      });
    },
  });
}

export const stopCommand = createStopCommand();
