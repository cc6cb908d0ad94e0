import { LABEL_STATE_DIR, LABEL_UID, LABEL_USER, type Labels } from "../docker/labels.js";

/** What `hangar prune` takes by default: objects of this user and of this state directory. */
export interface PruneScope {
  readonly uid: string;
  /** Absolute, as the runs label it; absent: any state directory of the user's (a run named by its id). */
  readonly stateDir?: string;
}

export interface OutOfScope {
  readonly reason: "user" | "state-dir";
  /** Whose or which: "alice (uid 1001)", or the other state directory. */
  readonly detail: string;
}

/**
 * Why an object lies outside the scope, or undefined when it is inside. An object without a
 * user label (made by another user's older Hangar, or by hand) is not this user's. Objects
 * without a state directory (images, the shared egress network, demo upstreams) belong to the
 * user's every state directory.
 */
export function outsideScope(labels: Labels, scope: PruneScope): OutOfScope | undefined {
  const uid = labels[LABEL_UID];
  if (uid !== scope.uid) {
    const user = labels[LABEL_USER];
    return { reason: "user", detail: uid === undefined ? "no user label" : `${user ?? "?"} (uid ${uid})` };
  }
  const dir = labels[LABEL_STATE_DIR];
  if (dir !== undefined && scope.stateDir !== undefined && dir !== scope.stateDir) return { reason: "state-dir", detail: dir };
  return undefined;
}
