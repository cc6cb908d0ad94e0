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
}

export type Labels = Readonly<Record<string, string>>;

export function hangarLabels(input: LabelInput, extra: Labels = {}): Record<string, string> {
  return {
    ...extra,
    [LABEL_MANAGED]: "true",
    [LABEL_SERVER]: input.server,
    [LABEL_ROLE]: input.role,
    [LABEL_RUN]: input.run,
  };
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
