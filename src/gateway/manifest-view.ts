import type { Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Mode } from "../core/policy/policy-schema.js";
import { manifestDrift, withheldByDrift, type ManifestDrift } from "../core/gateway/manifest-drift.js";
import { pinManifest, type PinnedManifest } from "../core/gateway/manifest-digest.js";
import { exposedResourceUri, namespaceNames } from "../core/gateway/namespacing.js";
import type { UpstreamManifest } from "./upstream-client.js";

/**
 * One server's lists as clients see them: namespaced, with the tools that must not be
 * offered taken out. A tool is withheld when its exposed name collides with another of the
 * same server's, or (ENFORCING) when it differs from the manifest the approval pinned.
 */
export interface ManifestView {
  readonly current: PinnedManifest;
  readonly drift?: ManifestDrift;
  /** exposed name → upstream tool (with its upstream name). */
  readonly tools: ReadonlyMap<string, Tool>;
  readonly prompts: ReadonlyMap<string, Prompt>;
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplate[];
  /** upstream tool name → why it is withheld. */
  readonly withheld: ReadonlyMap<string, string>;
}

export function buildManifestView(server: string, manifest: UpstreamManifest, pinned: PinnedManifest | undefined, mode: Mode): ManifestView {
  const current = pinManifest(manifest.tools);
  const drift = pinned !== undefined ? manifestDrift(pinned, current) : undefined;
  const withheld = new Map<string, string>();
  if (mode === "enforcing") {
    for (const name of withheldByDrift(drift)) {
      const how = drift?.added.includes(name) === true ? "was added" : "changed (name, description or input schema)";
      withheld.set(name, `tool ${JSON.stringify(name)} of server ${JSON.stringify(server)} is withheld: it ${how} since the server's approval (manifest drift, ENFORCING); review it and re-approve with: hangar approve request <policy file>`);
    }
  }

  const toolNames = namespaceNames(server, manifest.tools.map((t) => t.name));
  for (const conflict of toolNames.conflicts) {
    for (const original of conflict.originals) withheld.set(original, `tool ${JSON.stringify(original)} of server ${JSON.stringify(server)} is withheld: its exposed name ${conflict.exposed} would collide with ${conflict.originals.filter((o) => o !== original).join(", ")}`);
  }
  const byName = new Map(manifest.tools.map((t) => [t.name, t]));
  const tools = new Map<string, Tool>();
  for (const { exposed, original } of toolNames.entries) tools.set(exposed, byName.get(original) as Tool);

  const promptNames = namespaceNames(server, manifest.prompts.map((p) => p.name));
  const promptByName = new Map(manifest.prompts.map((p) => [p.name, p]));
  const prompts = new Map<string, Prompt>();
  for (const { exposed, original } of promptNames.entries) prompts.set(exposed, promptByName.get(original) as Prompt);

  return {
    current,
    ...(drift !== undefined ? { drift } : {}),
    tools,
    prompts,
    resources: manifest.resources.map((r) => ({ ...r, uri: exposedResourceUri(server, r.uri) })),
    resourceTemplates: manifest.resourceTemplates.map((t) => ({ ...t, uriTemplate: exposedResourceUri(server, t.uriTemplate) })),
    withheld,
  };
}

/** A fingerprint of what clients would see, to tell whether a list_changed is due. */
export function viewFingerprint(view: ManifestView | undefined): string {
  if (view === undefined) return "";
  return JSON.stringify([view.current.digest, [...view.withheld.keys()].sort(), [...view.prompts.keys()], view.resources.map((r) => r.uri), view.resourceTemplates.map((t) => t.uriTemplate)]);
}
