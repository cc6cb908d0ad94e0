import type { CliIo } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/run-cli.js";
import type { Command } from "../../src/cli/command.js";

export interface CapturedIo extends CliIo {
  readonly stdout: () => string;
  readonly stderr: () => string;
}

export function captureIo(env: Record<string, string | undefined> = {}): CapturedIo {
  let out = "";
  let err = "";
  return {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    env,
    stdout: () => out,
    stderr: () => err,
  };
}

/** Runs `hangar <argv>` in-process and returns what a shell would see. */
export async function hangar(
  argv: readonly string[],
  options: { env?: Record<string, string | undefined>; commands?: readonly Command[] } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo(options.env);
  const code = await runCli(argv, io, { version: "0.0.0-test", ...(options.commands ? { commands: options.commands } : {}) });
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}
