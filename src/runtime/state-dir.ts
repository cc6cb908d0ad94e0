import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { currentCreator } from "../docker/labels.js";

/** Names the state directory of `hangar run` and the verbs that look at its runs (logs, prune). */
export const STATE_DIR_ENV = "HANGAR_STATE_DIR";

/**
 * Where a run keeps its state on the host: the policy folder the sidecar mounts, and the
 * server's stderr (`logs/`), which outlives the run. $HANGAR_STATE_DIR, else a folder of this
 * user's own in the OS temp folder (one shared by every user could not be written by the next).
 * Always absolute: it is also a label that prune compares.
 */
export function defaultStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const named = env[STATE_DIR_ENV];
  if (named !== undefined && named !== "") return resolve(named);
  return join(tmpdir(), `hangar-${currentCreator().uid}`);
}
