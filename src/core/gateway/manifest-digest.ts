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

export function pinManifest(tools: readonly ToolDescriptor[]): PinnedManifest {
  const perTool: Record<string, string> = {};
  for (const tool of tools) perTool[tool.name] = toolDigest(tool);
  return { digest: manifestDigest(tools), tools: perTool };
}
