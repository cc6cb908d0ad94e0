import { plural } from "../../baseline/text-table.js";
import { LABEL_OWNER, selectorTerms } from "../../docker/labels.js";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { currentCreator } from "../../docker/labels.js";
import { defaultStateDir, STATE_DIR_ENV } from "../../runtime/state-dir.js";
import { Pruner, type KeptObject } from "../../runtime/pruner.js";
import { EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { ownerState, type OwnerState } from "./sandbox-inventory.js";

export interface PruneDeps extends DockerVerbDeps {
  /** Whether an owner process (`<hostname>:<pid>`) still runs; tests inject it. */
  readonly ownerState?: (owner: string) => OwnerState;
  /** The owner label this process would carry. */
  readonly self?: string;
  /** This process's user (uid); default the real one. */
  readonly uid?: string;
}

export function createPruneCommand(deps: PruneDeps = {}): Command {
  return defineCommand({
    name: "prune",
    summary: "Remove Hangar sandboxes whose owner has ended (--all: every Hangar object; --images: images too)",
    usage: "hangar prune [--all] [--dry-run] [--images] [--server <name>] [--run <id>] [--state-dir <dir>] [--json]",
    description:
      "Removes the objects on this Docker engine that carry Hangar's labels and that nobody uses any more:\n" +
      "the sandboxes (containers, networks, volumes) whose owning process on this host has ended, and the\n" +
      "shared egress network when no sandbox is attached. A sandbox whose owner still runs, or whose owner\n" +
      "is on another host (a shared engine), is left alone and listed as kept; so are the demo upstreams.\n" +
      "Only this user's objects are considered, and of those only the ones of this state directory\n" +
      "($HANGAR_STATE_DIR, else hangar-<uid> in the OS temp folder; --state-dir names another; a --run is\n" +
      "taken from any state directory of this user's): the labels\n" +
      "hangar.uid and hangar.state-dir say whose they are. Images and the egress network are the user's own.\n" +
      "--all removes every Hangar object, other users' and live sandboxes included (their `hangar run` ends).\n" +
      "--images also removes the base, sidecar and server images (they are slow to rebuild).\n" +
      "--server and --run narrow it to one server's or one run's objects; --dry-run only lists.",
    options: {
      all: { type: "boolean", description: "Also remove live sandboxes, other hosts' objects and the demo upstreams." },
      "dry-run": { type: "boolean", description: "List what would be removed, and remove nothing." },
      images: { type: "boolean", description: "Also remove Hangar's images." },
      server: { type: "string", valueName: "<name>", description: "Only objects of this server." },
      run: { type: "string", valueName: "<id>", description: "Only objects of this run." },
      "state-dir": { type: "string", valueName: "<dir>", description: `The state directory whose sandboxes to consider (default $${STATE_DIR_ENV}, else this user's folder in the OS temp folder).` },
      json: { type: "boolean", description: "Print what was (or would be) removed and kept as JSON." },
    },
    positionals: { max: 0 },
    details: "Exit status: 0, also when there was nothing to remove; 2 when no Docker engine answers.",
    async run({ values }, io) {
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const stateOf = deps.ownerState ?? ((owner: string) => ownerState(owner));
        const self = deps.self ?? `${hostname()}:${process.pid}`;
        const all = values.all === true;
        const dryRun = values["dry-run"] === true;
        const selector = { ...(values.server !== undefined ? { server: values.server } : {}), ...(values.run !== undefined ? { run: values.run } : {}) };
        // Listed before they go: which removed objects still had a live process behind them
        // (by default only this process's own can be among them; with --all, anyone's).
        const owners = new Set(
          (await ctx.engine.listContainers({ labels: selectorTerms(selector) }))
            .map((c) => c.labels[LABEL_OWNER])
            .filter((o): o is string => o !== undefined && (o === self || stateOf(o) === "alive")),
        );
        // A run named by its id is meant wherever it keeps its state; otherwise this state directory's.
        const stateDir = values["state-dir"] !== undefined ? resolve(values["state-dir"]) : values.run === undefined ? defaultStateDir(io.env) : undefined;
        const scope = { uid: deps.uid ?? currentCreator().uid, ...(stateDir !== undefined ? { stateDir } : {}) };
        const result = await new Pruner(ctx.engine).prune({
          ...selector,
          ...(all ? {} : { scope }),
          images: values.images === true,
          dryRun,
          // Ours, or its process has ended on this host. Never a live sandbox of another process.
          ...(all ? {} : { mayTake: (owner: string) => owner === self || stateOf(owner) === "dead" }),
        });
        const liveOwners = [...owners].filter((o) => all || o === self);
        if (values.json === true) {
          io.out(`${JSON.stringify({ dryRun, all, ...(all ? {} : { scope }), removed: result.removed, kept: result.kept, keptNetworks: result.keptNetworks, liveOwners }, null, 2)}\n`);
          return EXIT_OK;
        }
        const { removed } = result;
        const verb = dryRun ? "would remove" : "removed";
        const lines = [
          ...removed.containers.map((n) => `${verb} container ${n}`),
          ...removed.networks.map((n) => `${verb} network ${n}`),
          ...removed.volumes.map((n) => `${verb} volume ${n}`),
          ...removed.images.map((n) => `${verb} image ${n}`),
          ...result.kept.map((k) => `kept ${k.kind} ${k.name} (${keptReason(k, stateOf)})`),
        ];
        for (const line of lines) io.out(`${line}\n`);
        for (const owner of liveOwners) io.err(`hangar: note: process ${owner} was still using some of what was ${dryRun ? "listed" : "removed"}; it will see it gone\n`);
        const total = removed.containers.length + removed.networks.length + removed.volumes.length + removed.images.length;
        const kept = result.kept.filter((k) => k.reason !== "in-use").length;
        io.out(
          (total === 0
            ? "nothing to prune"
            : `${dryRun ? "would prune" : "pruned"} ${plural(removed.containers.length, "container")}, ${plural(removed.networks.length, "network")}, ${plural(removed.volumes.length, "volume")}` +
              `${values.images === true ? `, ${plural(removed.images.length, "image")}` : ""}`) +
            `${kept > 0 ? `; kept ${plural(kept, "object")} of other processes, hosts, users or state directories (--all removes them too)` : ""}\n`,
        );
        return EXIT_OK;
      });
    },
  });
}

function keptReason(k: KeptObject, stateOf: (owner: string) => OwnerState): string {
  if (k.reason === "in-use") return "still used by a container that stays";
  if (k.reason === "demo") return "a demo upstream; --all removes it";
  if (k.reason === "user") return `another user's: ${k.detail ?? "?"}; --all removes it`;
  if (k.reason === "state-dir") return `of state directory ${k.detail ?? "?"}; --state-dir or --all removes it`;
  if (k.owner === undefined) return "its sandbox stays";
  const state = stateOf(k.owner);
  return state === "alive" ? `owner ${k.owner} is running` : `owner ${k.owner} is on another host`;
}

export const pruneCommand = createPruneCommand();
