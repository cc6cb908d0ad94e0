import { pinnedSurfaces, type PinnedManifest } from "./manifest-digest.js";

/**
 * How a server's current tools differ from the manifest its approval pinned. Changed and
 * added tools are what a rug pull looks like (a description that now asks the model to
 * exfiltrate, a new tool nobody reviewed); removed tools are reported but harmless.
 */
export interface ManifestDrift {
  readonly pinnedDigest: string;
  readonly currentDigest: string;
  readonly changed: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** Undefined when the digests match. */
export function manifestDrift(pinned: PinnedManifest, current: PinnedManifest): ManifestDrift | undefined {
  if (pinned.digest === current.digest) return undefined;
  const changed: string[] = [];
  const added: string[] = [];
  for (const [name, digest] of Object.entries(current.tools)) {
    const was = Object.hasOwn(pinned.tools, name) ? pinned.tools[name] : undefined;
    if (was === undefined) added.push(name);
    else if (was !== digest) changed.push(name);
  }
  const removed = Object.keys(pinned.tools).filter((name) => !Object.hasOwn(current.tools, name));
  return { pinnedDigest: pinned.digest, currentDigest: current.digest, changed: changed.sort(), added: added.sort(), removed: removed.sort() };
}

/** The tools ENFORCING withholds under a drift: every tool that is not exactly as approved. */
export function withheldByDrift(drift: ManifestDrift | undefined): ReadonlySet<string> {
  return new Set(drift === undefined ? [] : [...drift.changed, ...drift.added]);
}

export function describeDrift(server: string, drift: ManifestDrift): string {
  const parts = [
    drift.changed.length > 0 ? `changed: ${drift.changed.join(", ")}` : "",
    drift.added.length > 0 ? `added: ${drift.added.join(", ")}` : "",
    drift.removed.length > 0 ? `removed: ${drift.removed.join(", ")}` : "",
  ].filter((p) => p !== "");
  return `the tool manifest of server ${JSON.stringify(server)} differs from its approval (${parts.join("; ")})`;
}

/**
 * How the server's prompts, resources and resource templates differ from the pin, by
 * surface key (`prompt:greet`, `resource:fixture://info`). Undefined when they match, and
 * when the pin predates them (tools-only pins stay valid and leave them unchecked).
 */
export interface SurfaceDrift {
  readonly changed: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export function surfaceDrift(pinned: PinnedManifest, current: PinnedManifest): SurfaceDrift | undefined {
  const was = pinnedSurfaces(pinned);
  const now = pinnedSurfaces(current);
  if (was === undefined || now === undefined) return undefined;
  const changed: string[] = [];
  const added: string[] = [];
  for (const [key, digest] of Object.entries(now)) {
    if (!Object.hasOwn(was, key)) added.push(key);
    else if (was[key] !== digest) changed.push(key);
  }
  const removed = Object.keys(was).filter((key) => !Object.hasOwn(now, key));
  return changed.length + added.length + removed.length === 0 ? undefined : { changed: changed.sort(), added: added.sort(), removed: removed.sort() };
}
