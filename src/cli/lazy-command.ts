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
  /**
   * Sub-verbs whose code loads on its own, without the rest of the group: the cheap ones that
   * scripts run often (`policy lint`). The group's own handling (help, unknown names) is unchanged.
   */
  readonly loadSubcommand?: Readonly<Record<string, () => Promise<Command>>>;
}

export function lazyCommand(verb: LazyVerb): Command {
  let loaded: Promise<Command> | undefined;
  const load = (): Promise<Command> => (loaded ??= verb.load());
  const run = async (argv: readonly string[], io: CliIo): Promise<number> => {
    const [first, ...rest] = argv;
    const own = first !== undefined && verb.loadSubcommand !== undefined && Object.hasOwn(verb.loadSubcommand, first) ? verb.loadSubcommand[first] : undefined;
    return own !== undefined ? (await own()).run(rest, io) : (await load()).run(argv, io);
  };
  return {
    name: verb.name,
    summary: verb.summary,
    ...(verb.subcommands !== undefined
      ? { subcommands: verb.subcommands.map(([name, summary]): Command => ({ name, summary, run: (argv, io) => run([name, ...argv], io) })) }
      : {}),
    run,
  };
}
