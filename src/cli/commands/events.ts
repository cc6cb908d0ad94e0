import { parseTimeBound } from "../../core/audit/time-bound.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { openDockerContext, withDocker, type DockerVerbDeps } from "../docker-context.js";
import { formatEvent } from "../format-event.js";
import { listSandboxes, noSandboxMessage } from "./sandbox-inventory.js";
import { readSidecarEvents } from "./sidecar-log-reader.js";

export interface EventsCommandDeps extends DockerVerbDeps {
  /** How often a follower checks whether a stopped sidecar is back. */
  readonly pollMs?: number;
}

export function createEventsCommand(deps: EventsCommandDeps = {}): Command {
  return defineCommand({
    name: "events",
    summary: "Show the sidecar's events of a running sandbox (--follow to keep watching)",
    usage: "hangar events <server|run> [--follow] [--json] [--since <time>] [--run <id>]",
    description:
      "Prints the events the sidecar of a sandbox has recorded (DNS answers, connections allowed,\n" +
      "flagged or blocked, lifecycle), read from its container log, one line each:\n" +
      "  08:16:25 BLOCK  egress evil.test:443 tls (transparent) undeclared-host\n" +
      "With --follow it keeps printing new events, across sidecar restarts, until Ctrl-C or the sandbox is\n" +
      "removed. Runtime events (sidecar restarts, server exit) are seen by the `hangar run` that owns the\n" +
      "sandbox; see its stderr or its --events file. A server with several sandboxes (several clients of one\n" +
      "policy) needs the run of one: `hangar events <run>` (see hangar ps).",
    options: {
      follow: { type: "boolean", short: "f", description: "Keep printing new events until Ctrl-C." },
      json: { type: "boolean", description: "Print the events as JSON lines, exactly as the sidecar wrote them (event schema v1)." },
      since: { type: "string", valueName: "<time>", description: "Only events from this time on: ISO-8601 or a duration back (90s, 15m, 2h, 7d)." },
      run: { type: "string", valueName: "<id>", description: "The run, when the server has several sandboxes (see hangar ps)." },
    },
    positionals: { min: 1, max: 1 },
    details: "Exit status: 0; 1 when no sandbox of <server> exists; 2 on a usage error or without a Docker engine.",
    async run({ values, positionals }, io) {
      const server = positionals[0]!;
      const since = values.since !== undefined ? parseTimeBound(values.since, (deps.now ?? Date.now)()) : undefined;
      return withDocker(io, deps.openContext ?? openDockerContext, async (ctx) => {
        const entries = (await listSandboxes(ctx.engine, { target: server, ...(values.run !== undefined ? { run: values.run } : {}) })).filter((e) => e.sidecar !== undefined);
        if (entries.length === 0) {
          io.err(`hangar: ${await noSandboxMessage(ctx.engine, server, values.run)}\n`);
          return EXIT_FINDING;
        }
        const running = entries.filter((e) => e.sidecar?.running === true);
        const candidates = running.length > 0 ? running : entries;
        if (candidates.length > 1) {
          throw usageError(`${server} has ${candidates.length} sandboxes (runs ${candidates.map((e) => e.run).join(", ")}); name one by its run: hangar events <run>`);
        }
        const entry = candidates[0]!;
        const abort = new AbortController();
        const unsubscribe = io.onSignal?.(() => abort.abort()) ?? (() => undefined);
        try {
          const end = await readSidecarEvents(ctx.engine, entry.sidecar!.id, {
            follow: values.follow === true,
            ...(since !== undefined ? { since } : {}),
            signal: abort.signal,
            ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
            onEvent: (event, raw) => io.out(`${values.json === true ? raw : formatEvent(event)}\n`),
            onPause: (state) =>
              io.err(
                state === "stopped"
                  ? `hangar: the sidecar of ${server} stopped; waiting for it to come back (Ctrl-C to quit)\n`
                  : `hangar: the sidecar of ${server} is running again\n`,
              ),
          });
          if (end === "removed") io.err(`hangar: the sandbox of ${server} (run ${entry.run}) is gone\n`);
          return EXIT_OK;
        } finally {
          unsubscribe();
        }
      });
    },
  });
}

export const eventsCommand = createEventsCommand();
