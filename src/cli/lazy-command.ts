import type { CliIo, Command } from "./command.js";

/**
 * A top-level verb whose code is imported only when it is chosen. `hangar --help` needs
 * every verb's name and summary, but importing every verb's code (Docker, SQLite, the MCP
 * SDK, zod) took most of a second on each start. So the verb list states names and
 * summaries itself, and a test checks them against the loaded commands.
 */
export interface LazyVerb {
  readonly name: string;
  readonly summary: string;
  /** A group's sub-verbs as [name, summary], in its own order. */
  readonly subcommands?: readonly (readonly [string, string])[];
  readonly load: () => Promise<Command>;
}

export function lazyCommand(verb: LazyVerb): Command {
  let loaded: Promise<Command> | undefined;
  const load = (): Promise<Command> => (loaded ??= verb.load());
  const run = async (argv: readonly string[], io: CliIo): Promise<number> => (await load()).run(argv, io);
  return {
    name: verb.name,
    summary: verb.summary,
    ...(verb.subcommands !== undefined
      ? { subcommands: verb.subcommands.map(([name, summary]): Command => ({ name, summary, run: (argv, io) => run([name, ...argv], io) })) }
      : {}),
    run,
  };
}
