#!/usr/bin/env node
import { readFileSync } from "node:fs";
import type { CliIo } from "./command.js";
import { runCli } from "./run-cli.js";

/** The `hangar` entry point: the only place in Hangar that exits the process. */

function packageVersion(): string | undefined {
  try {
    // Same relative path from src/cli/main.ts and dist/cli/main.js.
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version;
  } catch {
    return undefined;
  }
}

const io: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  // A getter: creating process.stdin costs ~15 ms, and only the verbs that bridge stdio need it.
  get stdio() {
    return { stdin: process.stdin, stdout: process.stdout };
  },
  onSignal: (handler) => {
    const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    for (const s of signals) process.on(s, handler);
    return () => {
      for (const s of signals) process.off(s, handler);
    };
  },
};

// `hangar policy schema | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  process.exit(0);
});

const code = await runCli(process.argv.slice(2), io, { version: packageVersion() });
// exitCode rather than exit(): exit() would cut off output still queued for a slow pipe.
process.exitCode = code;
