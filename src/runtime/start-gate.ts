/**
 * The server's start gate. The server container is created and started while its sidecar is
 * still starting (a container start is a few hundred milliseconds of engine work), but the
 * server's own code must not run before the sidecar serves: its first DNS query or connection
 * would find nobody, and leave no event. So a node server starts under a preload that blocks
 * on one line of its stdin; the control plane writes that line once the sidecar (and, with
 * runtime.catchAll, the netns routes) are up. Nothing of the server has run by then.
 *
 * Only commands that start `node` are gated (the base image has no shell; a preload is the one
 * hook every node has). Other commands start after the sidecar, as before. The gate reads one
 * byte at a time, so it takes nothing of what follows the line (the MCP client's messages).
 * Stdin closing before the line (the control plane died) ends the process without running it.
 */

/** Where the gate is mounted in the server container, read-only. */
export const GATE_MOUNT_FILE = "/opt/hangar/start-gate.cjs";
/** The file's name in the run's folder on the host. */
export const GATE_FILE_NAME = "start-gate.cjs";
/** The exit code of a server whose stdin closed before it was let go. */
export const GATE_CLOSED_EXIT = 75;

/** CommonJS, so `node --require` loads it in any node, before an ES or CommonJS main module. */
export const GATE_SOURCE = `"use strict";
// Hangar's start gate: waits for one line on stdin before the server's code runs (src/runtime/start-gate.ts).
(() => {
  const { readSync } = require("node:fs");
  const one = Buffer.alloc(1);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n;
    try {
      n = readSync(0, one, 0, 1, null);
    } catch (err) {
      if (err && err.code === "EAGAIN") { Atomics.wait(pause, 0, 0, 5); continue; }
      throw err;
    }
    if (n === 0) process.exit(${GATE_CLOSED_EXIT});
    if (one[0] === 10) return;
  }
})();
`;

/** The line that lets the server go. */
export const GATE_OPEN_LINE = "\n";

/**
 * The command with the gate preloaded, or undefined when it cannot be gated (not started by
 * `node`, or the image's own entrypoint, which is not known here).
 */
export function gatedCommand(entrypoint: readonly string[] | undefined): string[] | undefined {
  if (entrypoint === undefined || entrypoint.length === 0) return undefined;
  const [program, ...rest] = entrypoint;
  if (program !== "node" && program !== "/usr/local/bin/node" && program !== "/usr/bin/node") return undefined;
  return [program, "--require", GATE_MOUNT_FILE, ...rest];
}
