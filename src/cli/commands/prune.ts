import { plural } from "../../baseline/text-table.js";
import { LABEL_OWNER, selectorTerms } from "../../docker/labels.js";
import { Pruner } from "../../runtime/pruner.js";
import { EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { ownerState } from "./sandbox-inventory.js";

export function createPruneCommand(deps: DockerVerbDeps = {}): Command {
  return defineCommand({
    name: "prune",
    summary: "Remove every Hangar container, network and volume (and images with --images)",
    usage: "hangar prune [--images] [--server <name>] [--run <id>] [--json]",
    description:
      "Removes everything on this Docker engine that carries Hangar's labels: sandbox containers and networks,\n" +
      "the shared egress network, demo upstreams, volumes, and with --images also the base, sidecar and server\n" +
      "images (they are slow to rebuild). Live sandboxes are removed too: their `hangar run` ends.\n" +
      "--server and --run narrow it to one server's or one run's objects.",
    options: {
      images: { type: "boolean", description: "Also remove Hangar's images." },
      server: { type: "string", valueName: "<name>", description: "Only objects of this server." },
      run: { type: "string", valueName: "<id>", description: "Only objects of this run." },
      json: { type: "boolean", description: "Print what was removed as JSON." },
    },
    positionals: { max: 0 },
    details: "Exit status: 0, also when there was nothing to remove; 2 when no Docker engine answers.",
    async run({ values }, io) {
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const selector = { ...(values.server !== undefined ? { server: values.server } : {}), ...(values.run !== undefined ? { run: values.run } : {}) };
        // Listed before they go: which removed objects still had a live process behind them.
        const owners = new Set(
          (await ctx.engine.listContainers({ labels: selectorTerms(selector) }))
            .map((c) => c.labels[LABEL_OWNER])
            .filter((o): o is string => o !== undefined && ownerState(o) === "alive"),
        );
        const result = await new Pruner(ctx.engine).prune({ ...selector, images: values.images === true });
        if (values.json === true) {
          io.out(`${JSON.stringify({ removed: result.removed, keptNetworks: result.keptNetworks, liveOwners: [...owners] }, null, 2)}\n`);
          return EXIT_OK;
        }
        const { removed } = result;
        const lines = [
          ...removed.containers.map((n) => `removed container ${n}`),
          ...removed.networks.map((n) => `removed network ${n}`),
          ...removed.volumes.map((n) => `removed volume ${n}`),
          ...removed.images.map((n) => `removed image ${n}`),
          ...result.keptNetworks.map((n) => `kept network ${n} (still used by a container outside the selection)`),
        ];
        for (const line of lines) io.out(`${line}\n`);
        for (const owner of owners) io.err(`hangar: note: process ${owner} was still using some of what was removed; it will see it gone\n`);
        const total = removed.containers.length + removed.networks.length + removed.volumes.length + removed.images.length;
        io.out(
          total === 0
            ? "nothing to prune\n"
            : `pruned ${plural(removed.containers.length, "container")}, ${plural(removed.networks.length, "network")}, ${plural(removed.volumes.length, "volume")}` +
                `${values.images === true ? `, ${plural(removed.images.length, "image")}` : ""}\n`,
        );
        return EXIT_OK;
      });
    },
  });
}

export const pruneCommand = createPruneCommand();
