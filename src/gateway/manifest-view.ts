import type { Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Mode } from "../core/policy/policy-schema.js";
import { toolGranted, type Approval } from "../core/gateway/approvals.js";
import { manifestDrift, surfaceDrift, withheldByDrift, type ManifestDrift, type SurfaceDrift } from "../core/gateway/manifest-drift.js";
import { pinManifest, pinnedSurfaces, surfaceKey, type PinnedManifest } from "../core/gateway/manifest-digest.js";
import { scanManifest, type ManifestPeer, type ManifestScan } from "../core/gateway/manifest-scan.js";
import { exposedResourceUri, namespaceNames } from "../core/gateway/namespacing.js";
import type { UpstreamManifest } from "./upstream-client.js";

/**
 * One server's lists as clients see them: namespaced, with the tools that must not be
 * offered taken out. A tool is withheld when its exposed name collides with another of the
 * same server's, or (ENFORCING) when it differs from the manifest the approval pinned, or
 * when the manifest scan flagged it and the approval's grant does not name it.
 */
export interface ManifestReview {
  /** The approval whose pins and per-tool grants apply; undefined when there is none. */
  readonly approval?: Approval;
  /** The other configured servers' tools (for shadowing and cross-server references). */
  readonly peers: readonly ManifestPeer[];
}

export interface ManifestView {
  readonly current: PinnedManifest;
  readonly drift?: ManifestDrift;
  /** Prompts, resources and templates that differ from the pin (by surface key); never set for tools-only pins. */
  readonly surfaceDrift?: SurfaceDrift;
  readonly scan: ManifestScan;
  /** Flagged tools no grant covers (withheld when ENFORCING). */
  readonly ungranted: readonly string[];
  /** exposed name → upstream tool (with its upstream name). */
  readonly tools: ReadonlyMap<string, Tool>;
  readonly prompts: ReadonlyMap<string, Prompt>;
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplate[];
  /** upstream tool name, or a prompt's, resource's or template's surface key (`prompt:greet`) → why it is withheld. */
  readonly withheld: ReadonlyMap<string, string>;
}

export function buildManifestView(server: string, manifest: UpstreamManifest, pinned: PinnedManifest | undefined, mode: Mode, review: ManifestReview = { peers: [] }): ManifestView {
  const current = pinManifest(manifest.tools, manifest);
  const drift = pinned !== undefined ? manifestDrift(pinned, current) : undefined;
  const changedSurfaces = pinned !== undefined ? surfaceDrift(pinned, current) : undefined;
  const scan = scanManifest(manifest.tools, { server, peers: review.peers }, manifest);
  const approval = review.approval;
  const surfaces = pinnedSurfaces(current) ?? {};
  const digestOf = (name: string): string | undefined => (Object.hasOwn(current.tools, name) ? current.tools[name] : Object.hasOwn(surfaces, name) ? surfaces[name] : undefined);
  const ungranted = scan.flagged.filter((name) => approval === undefined || !toolGranted(approval, name, digestOf(name)));
  const withheld = new Map<string, string>();
  if (mode === "enforcing") {
    for (const name of withheldByDrift(drift)) {
      const how = drift?.added.includes(name) === true ? "was added" : "changed (name, description or input schema)";
      withheld.set(name, `tool ${JSON.stringify(name)} of server ${JSON.stringify(server)} is withheld: it ${how} since the server's approval (manifest drift, ENFORCING); review it and re-approve with: hangar approve request <policy file>`);
    }
    for (const key of [...(changedSurfaces?.changed ?? []), ...(changedSurfaces?.added ?? [])]) {
      const how = changedSurfaces?.added.includes(key) === true ? "was added" : "changed";
      withheld.set(key, `${describeSurface(key)} of server ${JSON.stringify(server)} is withheld: it ${how} since the server's approval (manifest drift, ENFORCING); review it and re-approve with: hangar approve request <policy file>`);
    }
    for (const name of ungranted) {
      if (withheld.has(name)) continue;
      const codes = [...new Set(scan.findings.filter((f) => f.tool === name).map((f) => `${f.code} at ${f.path}`))].join(", ");
      withheld.set(
        name,
        `${describeSurface(name)} of server ${JSON.stringify(server)} is withheld: the manifest scan flagged it (${codes || "too many findings"}) and no grant names it (ENFORCING); ` +
          `review it with: hangar approve list --server ${server}, then grant it with: hangar approve grant ${approval?.id ?? "<id>"} --tools ${name}`,
      );
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
    ...(changedSurfaces !== undefined ? { surfaceDrift: changedSurfaces } : {}),
    scan,
    ungranted,
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

/** `tool "echo"`, `prompt "greet"`, `resource "fixture://info"`, `resource template "fixture://items/{id}"`. */
export function describeSurface(key: string): string {
  for (const [kind, label] of [
    ["prompt", "prompt"],
    ["resource", "resource"],
    ["resourceTemplate", "resource template"],
  ] as const) {
    const prefix = surfaceKey(kind, "");
    if (key.startsWith(prefix)) return `${label} ${JSON.stringify(key.slice(prefix.length))}`;
  }
  return `tool ${JSON.stringify(key)}`;
}
