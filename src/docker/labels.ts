import { userInfo } from "node:os";

/**
 * Every object Hangar creates (container, network, volume, image) carries these labels,
 * so `hangar prune` and a restarted control plane can find and remove orphans.
 */
export const LABEL_MANAGED = "hangar.managed";
export const LABEL_SERVER = "hangar.server";
export const LABEL_ROLE = "hangar.role";
export const LABEL_RUN = "hangar.run";
/** `<hostname>:<pid>` of the process that started a sandbox: tells a crashed run from a live one. */
export const LABEL_OWNER = "hangar.owner";
/** The uid (and name) of the user whose Hangar created an object: `hangar prune` takes only its own user's by default. */
export const LABEL_UID = "hangar.uid";
export const LABEL_USER = "hangar.user";
/** The state directory (absolute) of the run that created a sandbox: prune takes only this one's by default. */
export const LABEL_STATE_DIR = "hangar.state-dir";
/** Content hash of what an image was built from; equal hash, no rebuild. */
export const LABEL_CONTENT = "hangar.content";

/** Objects shared by all sandboxes (the egress network) use this as server and run. */
export const SHARED = "shared";

/** `demo`: the demo upstreams (src/cli/demo-upstreams.ts, docker-compose.yml). */
export type HangarRole = "sidecar" | "server" | "network" | "image" | "test" | "demo";

export interface LabelInput {
  readonly server: string;
  readonly role: HangarRole;
  readonly run: string;
  /** Who creates it; default this process's user. */
  readonly creator?: Creator;
  /** The run's state directory, for what belongs to one run (its networks and containers). */
  readonly stateDir?: string;
}

/** The user a Hangar process runs as. */
export interface Creator {
  readonly uid: string;
  readonly user: string;
}

/** This process's user: uid and name (a platform without uids gives "-1", as os.userInfo does). */
export function currentCreator(): Creator {
  try {
    const info = userInfo();
    return { uid: String(info.uid), user: info.username };
  } catch {
    // No passwd entry for the uid (a container run as an arbitrary uid).
    const uid = process.getuid?.() ?? -1;
    return { uid: String(uid), user: process.env["USER"] ?? String(uid) };
  }
}

export type Labels = Readonly<Record<string, string>>;

export function hangarLabels(input: LabelInput, extra: Labels = {}): Record<string, string> {
  return {
    ...extra,
    [LABEL_MANAGED]: "true",
    [LABEL_SERVER]: input.server,
    [LABEL_ROLE]: input.role,
    [LABEL_RUN]: input.run,
    ...creatorLabels(input.creator ?? currentCreator()),
    ...(input.stateDir !== undefined ? { [LABEL_STATE_DIR]: input.stateDir } : {}),
  };
}

export function creatorLabels(creator: Creator): Record<string, string> {
  return { [LABEL_UID]: creator.uid, [LABEL_USER]: creator.user };
}

/** Which labelled objects a query or prune means. Absent fields match anything. */
export interface LabelSelector {
  readonly server?: string;
  readonly role?: HangarRole;
  readonly run?: string;
}

/** `key=value` terms for the engine's label filter; always restricted to Hangar's own objects. */
export function selectorTerms(selector: LabelSelector = {}): string[] {
  const terms = [`${LABEL_MANAGED}=true`];
  if (selector.server !== undefined) terms.push(`${LABEL_SERVER}=${selector.server}`);
  if (selector.role !== undefined) terms.push(`${LABEL_ROLE}=${selector.role}`);
  if (selector.run !== undefined) terms.push(`${LABEL_RUN}=${selector.run}`);
  return terms;
}

export function matchesSelector(labels: Labels, selector: LabelSelector = {}): boolean {
  return selectorTerms(selector).every((term) => {
    const eq = term.indexOf("=");
    return labels[term.slice(0, eq)] === term.slice(eq + 1);
  });
}
