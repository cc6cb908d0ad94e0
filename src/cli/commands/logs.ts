import { existsSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { selectorTerms } from "../../docker/labels.js";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { suggestKey } from "../../policy/suggest-key.js";
import { ServerLogStore, type ServerLogEntry } from "../../runtime/server-log-store.js";
import { defaultStateDir, STATE_DIR_ENV } from "../../runtime/state-dir.js";
import { EXIT_FINDING, EXIT_OK, type CliIo, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { DEFAULT_CONFIG } from "./gateway-options.js";
import { dockerUnavailableMessage, openDockerContext, type DockerVerbDeps } from "../docker-context.js";

export interface LogsDeps extends DockerVerbDeps {
  /** How often --follow looks for new lines and whether the sandbox still runs. */
  readonly pollMs?: number;
}

const POLL_MS = 250;

export function createLogsCommand(deps: LogsDeps = {}): Command {
  return defineCommand({
    name: "logs",
    summary: "Show a server's stderr, from a running sandbox or one that has ended (--follow to keep watching)",
    usage: "hangar logs <server|run> [--run <id>] [--follow] [--json] [--state-dir <dir>]",
    description:
      "Prints what the server of a sandbox wrote on stderr. `hangar run` keeps it under the state directory\n" +
      "(<state-dir>/logs/<server>/<run>.log, at most 1 MiB per run and the newest 50 runs), and `hangar serve`\n" +
      "under hangar.yaml's gateway.stateDir (with --config, HANGAR_CONFIG or ./hangar.yaml), so it is there\n" +
      "while the sandbox runs and after it has ended. <server> shows its newest run; name a run (see\n" +
      "hangar ps) to see another. --follow keeps printing new lines until the sandbox ends (or Ctrl-C).",
    options: {
      run: { type: "string", valueName: "<id>", description: "This run of <server>." },
      follow: { type: "boolean", short: "f", description: "Keep printing new lines until the sandbox ends." },
      json: { type: "boolean", description: "Print { server, run, running, file, rotated, lines } (with --follow: one JSON line per log line)." },
      "state-dir": { type: "string", valueName: "<dir>", description: `Where the runs kept their logs (default $${STATE_DIR_ENV}, else this user's folder in the OS temp folder).` },
    },
    positionals: { min: 1, max: 1 },
    details: "Exit status: 0 when the log was shown, 1 when no run of that name or id has a log, 2 on a usage error.",
    async run({ values, positionals }, io) {
      const target = positionals[0]!;
      const stores = (await logDirs(values, io)).map((dir) => new ServerLogStore({ dir }));
      const store = stores[0]!;
      const entries = (await Promise.all(stores.map((s) => s.list()))).flat().sort((a, b) => b.modifiedMs - a.modifiedMs);
      const matches = entries.filter((e) => (e.run === target && values.run === undefined) || (e.server === target && (values.run === undefined || e.run === values.run)));
      const entry = matches[0];
      if (entry === undefined) {
        io.err(`hangar: ${notFound(entries, target, values.run, store.dir)}\n`);
        return EXIT_FINDING;
      }
      const runsOfServer = entries.filter((e) => e.server === entry.server).length;
      if (runsOfServer > 1 && entry.run !== target && values.run === undefined && values.json !== true) {
        io.err(`hangar: ${entry.server} has logs of ${runsOfServer} runs; showing the newest (run ${entry.run}); name another with --run <id>\n`);
      }
      const isRunning = await runningCheck(io, deps, entry);
      const { older, current } = await store.readParts(entry);
      const text = older + current;
      if (values.follow !== true) {
        const running = await isRunning();
        if (values.json === true) {
          io.out(`${JSON.stringify({ server: entry.server, run: entry.run, running, file: entry.file, rotated: entry.rotated, lines: splitLines(text) }, null, 2)}\n`);
        } else {
          io.out(text);
        }
        return EXIT_OK;
      }
      const emit = lineEmitter(io, entry, values.json === true);
      emit(text);
      await follow(entry.file, emit, isRunning, io, deps.pollMs ?? POLL_MS, Buffer.byteLength(current));
      emit.flush();
      return EXIT_OK;
    },
  });
}

export const logsCommand = createLogsCommand();

/**
 * Where logs are looked for: --state-dir alone when given; else `hangar run`'s state directory
 * and, when a Hangar configuration is named (--config, HANGAR_CONFIG) or ./hangar.yaml exists,
 * the gateway's stateDir from it, where `hangar serve` keeps its servers' logs.
 */
async function logDirs(values: { readonly "state-dir"?: string | undefined; readonly config?: string | undefined }, io: CliIo): Promise<string[]> {
  if (values["state-dir"] !== undefined) return [join(resolve(values["state-dir"]), "logs")];
  const dirs = [join(defaultStateDir(io.env), "logs")];
  const config = values.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (config !== undefined) dirs.push(join((await loadHangarConfigPaths(config)).stateDir, "logs"));
  return [...new Set(dirs)];
}

function notFound(entries: readonly ServerLogEntry[], target: string, run: string | undefined, dir: string): string {
  if (entries.length === 0) return `no server logs in ${dir} (hangar run keeps each server's stderr there; --state-dir or ${STATE_DIR_ENV} names another place)`;
  if (run !== undefined && entries.some((e) => e.server === target)) {
    const guess = suggestKey(run, entries.filter((e) => e.server === target).map((e) => e.run));
    return `${target} has no run ${JSON.stringify(run)} with logs${guess !== undefined ? `; did you mean ${guess}?` : ""}`;
  }
  const guess = suggestKey(target, [...new Set(entries.flatMap((e) => [e.server, e.run]))]);
  return `no logs of ${JSON.stringify(target)} in ${dir}${guess !== undefined ? `; did you mean "${guess}"?` : `; there are logs of ${[...new Set(entries.map((e) => e.server))].join(", ")}`}`;
}

/**
 * Whether the run's server container still exists, asked of the engine each time. Without an
 * engine the log can still be read (it is a file); --follow then stops after what is there.
 */
async function runningCheck(io: CliIo, deps: LogsDeps, entry: ServerLogEntry): Promise<() => Promise<boolean>> {
  try {
    const ctx = await (deps.openContext ?? openDockerContext)(io);
    const labels = selectorTerms({ server: entry.server, run: entry.run, role: "server" });
    return async () => (await ctx.engine.listContainers({ labels })).some((c) => c.running);
  } catch (err) {
    const line = dockerUnavailableMessage(err, io.env);
    if (line === undefined) throw err;
    io.err(`${line.replace(/^hangar: /, "hangar: note: ")}; the log is shown as kept\n`);
    return async () => false;
  }
}

/** Prints new bytes of `file` as they come (the .1 file's tail first when it rotated) until the sandbox ends or a signal comes. */
async function follow(file: string, emit: (text: string) => void, isRunning: () => Promise<boolean>, io: CliIo, pollMs: number, from: number): Promise<void> {
  let stopped = false;
  const unsubscribe = io.onSignal?.(() => (stopped = true)) ?? (() => undefined);
  let offset = from;
  let inode = (await stat(file).catch(() => undefined))?.ino;
  const readFrom = async (path: string, start: number): Promise<number> => {
    const handle = await open(path, "r").catch(() => undefined);
    if (handle === undefined) return start;
    try {
      const { size } = await handle.stat();
      if (size <= start) return size < start ? 0 : start;
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      emit(buffer.toString("utf8"));
      return size;
    } finally {
      await handle.close();
    }
  };
  try {
    for (;;) {
      const alive = await isRunning();
      const now = await stat(file).catch(() => undefined);
      if (now !== undefined && inode !== undefined && now.ino !== inode) {
        // Rotated: the rest of the old file is now <file>.1.
        await readFrom(`${file}.1`, offset);
        offset = 0;
      }
      inode = now?.ino ?? inode;
      offset = await readFrom(file, offset);
      if (!alive || stopped) return;
      await new Promise((r) => setTimeout(r, pollMs));
      if (stopped) return;
    }
  } finally {
    unsubscribe();
  }
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Text as-is, or one JSON document per complete line; flush() emits a last line without its newline. */
function lineEmitter(io: CliIo, entry: ServerLogEntry, json: boolean): ((text: string) => void) & { flush: () => void } {
  let partial = "";
  const emit = (text: string): void => {
    if (!json) {
      io.out(text);
      return;
    }
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) io.out(`${JSON.stringify({ server: entry.server, run: entry.run, line })}\n`);
  };
  return Object.assign(emit, {
    flush: () => {
      if (json && partial !== "") io.out(`${JSON.stringify({ server: entry.server, run: entry.run, line: partial })}\n`);
      partial = "";
    },
  });
}
