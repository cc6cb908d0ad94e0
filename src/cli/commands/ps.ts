import { alignRows } from "../../baseline/text-table.js";
import { EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { formatUptime, listSandboxes, type SandboxContainer, type SandboxEntry } from "./sandbox-inventory.js";

const state = (c: SandboxContainer | undefined): string => (c === undefined ? "missing" : c.status);

function uptimeSeconds(entry: SandboxEntry, nowMs: number): number | undefined {
  if (entry.sidecar?.running !== true || entry.createdAt === undefined) return undefined;
  return Math.max(0, Math.floor((nowMs - Date.parse(entry.createdAt)) / 1000));
}

function toJson(entry: SandboxEntry, nowMs: number): Record<string, unknown> {
  const container = (c: SandboxContainer | undefined): Record<string, unknown> | null =>
    c === undefined ? null : { id: c.id, name: c.name, state: c.status, ...(c.address !== undefined ? { address: c.address } : {}) };
  return {
    server: entry.server,
    run: entry.run,
    sidecar: container(entry.sidecar),
    serverContainer: container(entry.serverContainer),
    network: entry.network?.name ?? null,
    sidecarAddress: entry.sidecar?.address ?? null,
    createdAt: entry.createdAt ?? null,
    uptimeSeconds: uptimeSeconds(entry, nowMs) ?? null,
    owner: entry.owner ?? null,
    ownerState: entry.ownerState ?? null,
  };
}

function formatTable(entries: readonly SandboxEntry[], nowMs: number): string {
  const rows = entries.map((e) => {
    const up = uptimeSeconds(e, nowMs);
    const owner = e.owner === undefined ? "-" : `${e.owner} (${e.ownerState === "unknown" ? "other host" : e.ownerState})`;
    return [e.server, e.run, state(e.sidecar), state(e.serverContainer), e.sidecar?.address ?? "-", up === undefined ? "-" : formatUptime(up), owner];
  });
  return `${alignRows([["SERVER", "RUN", "SIDECAR", "SERVER-CONTAINER", "SIDECAR-ADDRESS", "UPTIME", "OWNER"], ...rows], "").join("\n")}\n`;
}

export function createPsCommand(deps: DockerVerbDeps = {}): Command {
  return defineCommand({
    name: "ps",
    summary: "List Hangar sandboxes: their containers, sidecar address, uptime and owner",
    usage: "hangar ps [<server|run>] [--json]",
    description:
      "Lists the sandboxes on this Docker engine, found by their Hangar labels: per server and run, the state\n" +
      "of the sidecar and server containers, the sidecar's address on the sandbox network, the uptime, and the\n" +
      "process that started it (host:pid) with whether that process is still alive. A sandbox whose owner is\n" +
      "dead is an orphan: `hangar stop <run>` or `hangar prune` removes it. Each client of a policy has a\n" +
      "sandbox of its own, so one server may show several runs; <server|run> shows only those.",
    options: {
      json: { type: "boolean", description: 'Print {"sandboxes": [...]} as JSON instead of a table.' },
    },
    positionals: { max: 1 },
    details: "Exit status: 0, also when nothing runs; 2 when no Docker engine answers.",
    async run({ values, positionals }, io) {
      const target = positionals[0];
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const entries = await listSandboxes(ctx.engine, target !== undefined ? { target } : {});
        const nowMs = (deps.now ?? Date.now)();
        if (values.json === true) {
          io.out(`${JSON.stringify({ sandboxes: entries.map((e) => toJson(e, nowMs)) }, null, 2)}\n`);
        } else if (entries.length === 0) {
          io.err("no Hangar sandboxes\n");
        } else {
          io.out(formatTable(entries, nowMs));
        }
        return EXIT_OK;
      });
    },
  });
}

export const psCommand = createPsCommand();
