import { parseArgs } from "node:util";
import { HangarError, isHangarError } from "../core/errors.js";
import { suggestKey } from "../policy/suggest-key.js";
import { EXIT_OK, EXIT_USAGE, type CliIo, type Command } from "./command.js";

/** Builders for commands: argument parsing, `--help` and usage errors handled once, here. */

export interface OptionSpec {
  readonly type: "boolean" | "string";
  readonly short?: string;
  readonly description: string;
  /** Shown in help for string options, e.g. "<file>". */
  readonly valueName?: string;
}

type OptionValues<O extends Record<string, OptionSpec>> = {
  readonly [K in keyof O]: (O[K]["type"] extends "boolean" ? boolean : string) | undefined;
};

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  readonly name: string;
  readonly summary: string;
  /** The full invocation, e.g. "hangar policy lint <file...> [--json]". */
  readonly usage: string;
  readonly description: string;
  readonly options: O;
  readonly positionals?: { readonly min?: number; readonly max?: number };
  /** Extra help after the options, e.g. exit codes or examples. */
  readonly details?: string;
  run(args: { values: OptionValues<O>; positionals: string[] }, io: CliIo): Promise<number>;
}

export function usageError(message: string): HangarError {
  return new HangarError("HANGAR_USAGE", message);
}

const HELP_OPTION: OptionSpec = { type: "boolean", short: "h", description: "Show this help." };

/** The environment variable naming hangar.yaml when no --config is given. */
export const CONFIG_ENV = "HANGAR_CONFIG";

/**
 * Every leaf verb accepts --config, so one shell alias or HANGAR_CONFIG serves them all. A verb
 * that reads hangar.yaml declares its own `config` option (with its own help); for the rest it
 * is this global one. Either way the verb sees `values.config` already defaulted from HANGAR_CONFIG.
 */
const GLOBAL_CONFIG_OPTION: OptionSpec = { type: "string", valueName: "<file>", description: `The Hangar configuration (default $${CONFIG_ENV}, else hangar.yaml).` };

function withGlobals(options: Record<string, OptionSpec>): Record<string, OptionSpec> {
  return { ...options, ...(Object.hasOwn(options, "config") ? {} : { config: GLOBAL_CONFIG_OPTION }), help: HELP_OPTION };
}

/** The io a verb runs with: HANGAR_CONFIG set to the --config it was given, so nested code sees one answer. */
function ioWithConfig(io: CliIo, config: string | undefined): CliIo {
  if (config === undefined || io.env[CONFIG_ENV] === config) return io;
  const env = { ...io.env, [CONFIG_ENV]: config };
  // Not a spread: io.stdio may be a getter whose stream should be created only on use.
  return Object.create(io, { env: { value: env, enumerable: true } }) as CliIo;
}

function optionsHelp(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(withGlobals(options)).map(([name, o]) => {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.valueName ?? "<value>"}` : ""}`;
    return [flag, o.description] as const;
  });
  return table(rows);
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 3;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`).join("\n");
}

/** "hangar policy lint" from "hangar policy lint <file...> [--json]". */
function invocation(usage: string): string {
  const words = usage.split(" ");
  const end = words.findIndex((w) => /^[<[-]/.test(w));
  return words.slice(0, end === -1 ? words.length : end).join(" ");
}

function reportUsage(io: CliIo, usage: string, message: string): number {
  io.err(`hangar: ${message}\nUsage: ${usage}\nRun '${invocation(usage)} --help' for more.\n`);
  return EXIT_USAGE;
}

/** parseArgs's own messages are long; say the same in one short line, with a suggestion. */
function parseArgsMessage(err: unknown, known: readonly string[]): string {
  const e = err as { code?: string; message?: string };
  const option = /'([^']+)'/.exec(e.message ?? "")?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option !== undefined) {
    const guess = suggestKey(option.replace(/^-+/, ""), known);
    return `unknown option ${option}${guess !== undefined ? `; did you mean --${guess}?` : ""}`;
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option !== undefined) return `option ${option.split(" ")[0]} ${/argument missing/.test(e.message ?? "") ? "needs a value" : "takes no value"}`;
  return e.message ?? String(err);
}

export function defineCommand<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): Command {
  const help = [`Usage: ${spec.usage}`, spec.description, `Options:\n${optionsHelp(spec.options)}`, ...(spec.details !== undefined ? [spec.details] : [])].join("\n\n") + "\n";
  const parseOptions = Object.fromEntries(
    Object.entries(withGlobals(spec.options)).map(([name, o]) => [name, { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}) }]),
  );
  return {
    name: spec.name,
    summary: spec.summary,
    async run(argv, io) {
      let parsed: { values: Record<string, unknown>; positionals: string[] };
      try {
        parsed = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: true });
      } catch (err) {
        return reportUsage(io, spec.usage, parseArgsMessage(err, Object.keys(parseOptions)));
      }
      if (parsed.values["help"] === true) {
        io.out(help);
        return EXIT_OK;
      }
      const count = parsed.positionals.length;
      const { min = 0, max = Number.POSITIVE_INFINITY } = spec.positionals ?? {};
      if (count < min) return reportUsage(io, spec.usage, min === 1 ? "missing argument" : `expected at least ${min} arguments, got ${count}`);
      if (count > max) return reportUsage(io, spec.usage, `unexpected argument ${JSON.stringify(parsed.positionals[max])}`);
      const config = (parsed.values["config"] as string | undefined) ?? io.env[CONFIG_ENV];
      const values = { ...parsed.values, ...(config !== undefined && config !== "" ? { config } : {}) };
      try {
        return await spec.run({ values: values as OptionValues<O>, positionals: parsed.positionals }, ioWithConfig(io, values["config"] as string | undefined));
      } catch (err) {
        if (isHangarError(err, "HANGAR_USAGE")) return reportUsage(io, spec.usage, err.message);
        throw err;
      }
    },
  };
}

export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  /** E.g. "hangar policy <command> [options]". */
  readonly usage: string;
  readonly description: string;
  readonly commands: readonly Command[];
  /** Options the caller handles before dispatch (such as --version), listed in help. */
  readonly extraOptions?: readonly (readonly [string, string])[];
}

function commandRows(commands: readonly Command[], prefix = ""): [string, string][] {
  return commands.flatMap((c): [string, string][] => [[`${prefix}${c.name}`, c.summary], ...commandRows(c.subcommands ?? [], `${prefix}${c.name} `)]);
}

/** A verb whose first argument selects a nested verb, such as `policy` in `hangar policy lint`. */
export function defineGroup(spec: GroupSpec): Command {
  const options = table([...(spec.extraOptions ?? []), ["-h, --help", "Show this help."]]);
  const help =
    [`Usage: ${spec.usage}`, spec.description, `Commands:\n${table(commandRows(spec.commands))}`, `Options:\n${options}`, `Run '${invocation(spec.usage)} <command> --help' for a command's options.`].join("\n\n") + "\n";
  return {
    name: spec.name,
    summary: spec.summary,
    subcommands: spec.commands,
    async run(argv, io) {
      const [first, ...rest] = argv;
      if (first === undefined) {
        io.err(help);
        return EXIT_USAGE;
      }
      if (first === "--help" || first === "-h") {
        io.out(help);
        return EXIT_OK;
      }
      if (first.startsWith("-")) return reportUsage(io, spec.usage, `unknown option ${first}`);
      const command = spec.commands.find((c) => c.name === first);
      if (command === undefined) {
        const guess = suggestKey(first, spec.commands.map((c) => c.name));
        return reportUsage(io, spec.usage, `unknown command "${invocation(spec.usage)} ${first}"${guess !== undefined ? `; did you mean "${guess}"?` : ""}`);
      }
      return command.run(rest, io);
    },
  };
}
