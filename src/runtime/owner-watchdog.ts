import { spawn } from "node:child_process";
import type { Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { hangarPackageRoot } from "../images/package-root.js";

/**
 * What removes a sandbox whose owner died without stopping it (a SIGKILL, the OOM killer):
 * the owner cannot clean up after itself then, and the next Hangar command may be days away.
 *
 * One watchdog process per sandbox, started detached (its own session: a signal to the
 * owner's process group does not reach it). Its stdin is a pipe whose write end only the
 * owner holds, and the kernel closes that end when the owner exits, however it exits. On
 * EOF the watchdog removes whatever is left of the run (containers, network, the folders it
 * was told about) and exits. A clean stop releases it the same way, with nothing left to do.
 * A pipe rather than polling a pid: no delay, and no pid reuse to be fooled by.
 */

export interface WatchTarget {
  readonly server: string;
  readonly run: string;
}

export interface OwnerWatch {
  /** Also remove this host folder if the owner dies (the sandbox's policy copy, its CA folder). */
  alsoRemove(path: string): void;
  /** The sandbox is stopped: the watchdog removes anything left of it, and exits. Idempotent. */
  release(): void;
}

export interface OwnerWatchdog {
  watch(target: WatchTarget): OwnerWatch;
}

/** How to start the watchdog process; the target (JSON) is appended to `args`. */
export interface WatchdogCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
}

/** One line from the owner to its watchdog; see owner-watchdog-main.ts. */
export interface WatchdogMessage {
  readonly remove: string;
}

/**
 * `node <root>/dist/runtime/owner-watchdog-main.js`, also from the bundled CLI (its chunks sit
 * in dist/cli; tsc's dist/runtime stays beside them). From src (tests, tsx) the entry is the
 * TypeScript file, through tsx.
 */
export function watchdogCommand(): WatchdogCommand {
  const here = fileURLToPath(import.meta.url);
  const root = hangarPackageRoot();
  if (here.endsWith(".ts")) return { command: process.execPath, args: ["--import", "tsx", join(dirname(here), "owner-watchdog-main.ts")], cwd: root };
  return { command: process.execPath, args: [join(root, "dist/runtime/owner-watchdog-main.js")], cwd: root };
}

export class ProcessOwnerWatchdog implements OwnerWatchdog {
  constructor(
    private readonly logger: Logger,
    private readonly command: WatchdogCommand = watchdogCommand(),
  ) {}

  watch(target: WatchTarget): OwnerWatch {
    const { logger, command } = this;
    const child = spawn(command.command, [...command.args, JSON.stringify(target)], {
      cwd: command.cwd,
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    // Without a watchdog the sandbox still runs; the next start of its server reaps it if its owner dies.
    child.on("error", (err) => logger.warn({ err, ...target }, "could not start the sandbox's owner watchdog"));
    const pipe = child.stdin as Socket;
    // EPIPE: the watchdog is gone already.
    pipe.on("error", (err) => logger.debug({ err, ...target }, "owner watchdog pipe closed"));
    // Neither the child nor the pipe may keep the owner's event loop alive.
    child.unref();
    pipe.unref();
    return {
      alsoRemove: (path) => {
        if (!pipe.writableEnded) pipe.write(`${JSON.stringify({ remove: path } satisfies WatchdogMessage)}\n`);
      },
      release: () => {
        if (!pipe.writableEnded) pipe.end();
      },
    };
  }
}
