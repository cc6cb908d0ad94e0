import { spawn } from "node:child_process";
import { runtimeError, type RuntimeErrorCode } from "../docker/runtime-error.js";

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Each non-empty stderr line as it arrives (progress). */
  readonly onLine?: (line: string) => void;
  readonly errorCode: RuntimeErrorCode;
  readonly timeoutMs?: number;
}

const TAIL = 4000;

/** Runs a host command without a shell; a non-zero exit becomes a HangarError with the stderr tail. */
export function runCommand(file: string, args: readonly string[], options: CommandOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 300_000,
    });
    const out: Buffer[] = [];
    let err = "";
    let partial = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => {
      const text = c.toString("utf8");
      err = (err + text).slice(-TAIL);
      if (options.onLine) {
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.trim() !== "") options.onLine(line.trimEnd());
      }
    });
    child.on("error", (e) => reject(runtimeError(options.errorCode, `${file}: ${e.message}`, { cause: e })));
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) resolve({ stdout, stderr: err });
      else {
        const why = signal ? `killed by ${signal}` : `exit code ${code}`;
        const tail = err.trim().split("\n").slice(-5).join(" | ");
        reject(runtimeError(options.errorCode, `${file} ${args.join(" ")} failed (${why}): ${tail}`, { data: { code, signal } }));
      }
    });
  });
}
