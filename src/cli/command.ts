import type { Readable, Writable } from "node:stream";

/**
 * The CLI's seam. A command is plain data plus `run`; commands never touch `process`,
 * so tests call them in-process with a captured `CliIo`.
 */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Raw process streams, for verbs that bridge a protocol (hangar run). Absent in most tests. */
  readonly stdio?: { readonly stdin: Readable; readonly stdout: Writable };
  /** Subscribes to SIGINT/SIGTERM; returns the unsubscribe. */
  readonly onSignal?: (handler: (signal: string) => void) => () => void;
}

export interface Command {
  /** The word that selects it, e.g. "lint". */
  readonly name: string;
  /** One line for the parent's command list. */
  readonly summary: string;
  /** Nested verbs, for a group such as `policy`. */
  readonly subcommands?: readonly Command[];
  /** Returns the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

export const EXIT_OK = 0;
/** The input is invalid, or a check found something. */
export const EXIT_FINDING = 1;
/** Usage error or unexpected failure. */
export const EXIT_USAGE = 2;
