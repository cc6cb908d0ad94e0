import { isHangarError } from "../core/errors.js";
import { EXIT_OK, EXIT_USAGE, type CliIo, type Command } from "./command.js";
import { commands as defaultCommands } from "./commands/index.js";
import { CONFIG_ENV, defineGroup } from "./define-command.js";

export interface RunCliOptions {
  readonly version?: string;
  readonly commands?: readonly Command[];
}

export function rootCommand(commands: readonly Command[] = defaultCommands): Command {
  return defineGroup({
    name: "hangar",
    summary: "Sandboxed, egress-enforcing runtime for MCP servers",
    usage: "hangar <command> [options]",
    description: "Hangar runs each MCP server in its own sandbox, where a sidecar enforces the server's policy.",
    commands,
    extraOptions: [
      ["--config <file>", "The Hangar configuration for any verb (default $HANGAR_CONFIG, else hangar.yaml)."],
      ["-V, --version", "Print the version."],
    ],
  });
}

/**
 * Runs one invocation and returns the exit code. Never exits the process and never lets
 * an error escape: failures become one line on stderr (the stack only with HANGAR_DEBUG=1).
 */
export async function runCli(argv: readonly string[], io: CliIo, options: RunCliOptions = {}): Promise<number> {
  if (argv[0] === "--version" || argv[0] === "-V") {
    io.out(`${options.version ?? "unknown"}\n`);
    return EXIT_OK;
  }
  const global = takeGlobalConfig(argv);
  if (global === "missing") {
    io.err("hangar: option --config needs a value\nUsage: hangar [--config <file>] <command> [options]\n");
    return EXIT_USAGE;
  }
  try {
    return await rootCommand(options.commands).run(global?.rest ?? argv, global !== undefined ? withEnv(io, CONFIG_ENV, global.config) : io);
  } catch (err) {
    const debug = io.env["HANGAR_DEBUG"] === "1";
    const message = oncePrefixed(err instanceof Error ? err.message : String(err));
    const code = isHangarError(err) ? ` [${err.code}]` : "";
    io.err(`hangar: ${message}${code}${debug ? "" : " (set HANGAR_DEBUG=1 for details)"}\n`);
    if (debug) io.err(`${describeError(err)}\n`);
    return EXIT_USAGE;
  }
}

/** `hangar --config f <verb> ...`: the global option before the verb, which the verb then sees as HANGAR_CONFIG. */
function takeGlobalConfig(argv: readonly string[]): { config: string; rest: readonly string[] } | "missing" | undefined {
  const [first, second, ...rest] = argv;
  if (first?.startsWith("--config=") === true) return { config: first.slice("--config=".length), rest: argv.slice(1) };
  if (first !== "--config") return undefined;
  if (second === undefined || second.startsWith("-")) return "missing";
  return { config: second, rest };
}

function withEnv(io: CliIo, name: string, value: string): CliIo {
  // Not a spread: io.stdio may be a getter whose stream should be created only on use.
  return Object.create(io, { env: { value: { ...io.env, [name]: value }, enumerable: true } }) as CliIo;
}

/**
 * An MCP server built on the SDK sends its McpError's message with the SDK's prefix, and the
 * SDK client adds it again: "MCP error -32602: MCP error -32602: ...". Say it once.
 */
function oncePrefixed(message: string): string {
  return message.replace(/^(MCP error (-?\d+): )(?:MCP error \2: )+/, "$1");
}

function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? current.message) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push("caused by:");
  }
  return parts.join("\n");
}
