import { canonicalJson } from "../audit/canonical-json.js";
import { sha256Hex } from "../audit/hash-chain.js";

/**
 * The tool manifest as approval pins it: each tool's name, description and input schema,
 * in canonical JSON (sorted keys, no whitespace), hashed with SHA-256. The manifest digest
 * hashes the list sorted by name, so the order a server lists its tools in does not
 * matter, while any change to a description or schema does. Per-tool digests say which
 * tools changed, so ENFORCING can withhold exactly those.
 */
export interface ToolDescriptor {
  readonly name: string;
  readonly description?: string;
  readonly inputSchema?: unknown;
}

export interface PinnedManifest {
  /** SHA-256 (hex) over the canonical tool list. */
  readonly digest: string;
  /** Tool name → SHA-256 (hex) of that tool's canonical form. */
  readonly tools: Readonly<Record<string, string>>;
  /**
   * Prompt name, resource URI, resource-template URI template → SHA-256 (hex) of its
   * canonical form. Absent in pins made before prompts and resources were pinned: those
   * pins leave them unchecked (`digest` stays the tools' digest, so old pins still match).
   */
  readonly prompts?: Readonly<Record<string, string>>;
  readonly resources?: Readonly<Record<string, string>>;
  readonly resourceTemplates?: Readonly<Record<string, string>>;
}

/** The parts of a prompt and a resource (or template) a pin covers: what a model or a user reads. */
export interface PromptDescriptor {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly arguments?: readonly { readonly name: string; readonly title?: string; readonly description?: string; readonly required?: boolean }[];
}

export interface ResourceDescriptor {
  readonly uri: string;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
}

export interface ResourceTemplateDescriptor {
  readonly uriTemplate: string;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
}

/** A server's lists beside its tools, as far as the pin is concerned. */
export interface ManifestSurfaces {
  readonly prompts: readonly PromptDescriptor[];
  readonly resources: readonly ResourceDescriptor[];
  readonly resourceTemplates: readonly ResourceTemplateDescriptor[];
}

function canonicalTool(tool: ToolDescriptor): { name: string; description?: string; inputSchema: unknown } {
  return { name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), inputSchema: tool.inputSchema ?? null };
}

export function toolDigest(tool: ToolDescriptor): string {
  return sha256Hex(canonicalJson(canonicalTool(tool)));
}

export function manifestDigest(tools: readonly ToolDescriptor[]): string {
  const sorted = [...tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(canonicalTool);
  return sha256Hex(canonicalJson(sorted));
}

/**
 * Pins the tools and, when `surfaces` is given, the prompts, resources and resource
 * templates too. A name listed twice keeps its last digest (the view withholds collisions).
 */
export function pinManifest(tools: readonly ToolDescriptor[], surfaces?: ManifestSurfaces): PinnedManifest {
  const perTool: Record<string, string> = {};
  for (const tool of tools) perTool[tool.name] = toolDigest(tool);
  if (surfaces === undefined) return { digest: manifestDigest(tools), tools: perTool };
  return {
    digest: manifestDigest(tools),
    tools: perTool,
    prompts: Object.fromEntries(surfaces.prompts.map((p) => [p.name, promptDigest(p)])),
    resources: Object.fromEntries(surfaces.resources.map((r) => [r.uri, resourceDigest(r)])),
    resourceTemplates: Object.fromEntries(surfaces.resourceTemplates.map((t) => [t.uriTemplate, resourceTemplateDigest(t)])),
  };
}

/** Only the named fields, in canonical JSON: a server's extra fields (_meta, icons) do not move the pin. */
function pick(value: object, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

export function promptDigest(prompt: PromptDescriptor): string {
  const args = (prompt.arguments ?? []).map((a) => pick(a, ["name", "title", "description", "required"]));
  return sha256Hex(canonicalJson({ ...pick(prompt, ["name", "title", "description"]), arguments: args }));
}

export function resourceDigest(resource: ResourceDescriptor): string {
  return sha256Hex(canonicalJson(pick(resource, ["uri", "name", "title", "description", "mimeType"])));
}

export function resourceTemplateDigest(template: ResourceTemplateDescriptor): string {
  return sha256Hex(canonicalJson(pick(template, ["uriTemplate", "name", "title", "description", "mimeType"])));
}

/** The lists beside tools. A prompt, resource or template is named `<kind>:<name or URI>` wherever tools are named by name alone (findings, withheld, grants). */
export type SurfaceKind = "prompt" | "resource" | "resourceTemplate";
export const SURFACE_KINDS: readonly SurfaceKind[] = ["prompt", "resource", "resourceTemplate"];

export function surfaceKey(kind: SurfaceKind, name: string): string {
  return `${kind}:${name}`;
}

/** Every prompt, resource and template of a pin by its surface key; undefined for a pin made before they were pinned. */
export function pinnedSurfaces(pin: PinnedManifest): Record<string, string> | undefined {
  if (pin.prompts === undefined && pin.resources === undefined && pin.resourceTemplates === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [kind, map] of [
    ["prompt", pin.prompts],
    ["resource", pin.resources],
    ["resourceTemplate", pin.resourceTemplates],
  ] as const) {
    for (const [name, digest] of Object.entries(map ?? {})) out[surfaceKey(kind, name)] = digest;
  }
  return out;
}
