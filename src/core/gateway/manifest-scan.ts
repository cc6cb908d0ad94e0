import { excerpt, firstHiddenCharacter, INSTRUCTION_CUES, matchCues, OTHER_SERVER_CUES, SHELL_CUES, URL_CUES, type CueSeverity, type TextCue } from "./injection-cues.js";
import { surfaceKey, toolDigest } from "./manifest-digest.js";
import { NAMESPACE_SEPARATOR } from "./namespacing.js";

/**
 * The manifest scan: what in a server's tool list (and its prompts, resources and resource
 * templates) looks hidden or manipulative, before anyone trusts it. One rule per kind of finding, each with a stable code:
 *
 *   MANIFEST_HIDDEN_UNICODE          invisible or bidirectional characters, anywhere
 *   MANIFEST_MODEL_INSTRUCTION       a description that instructs the model ("ignore previous…",
 *                                    "before using this tool, call…", "do not tell the user")
 *   MANIFEST_CROSS_SERVER_REFERENCE  a description naming another server's tools
 *   MANIFEST_URL                     a URL in a description
 *   MANIFEST_SHELL_FRAGMENT          a shell command in a description
 *   MANIFEST_SCHEMA_INSTRUCTION      the same instructions inside the input or output schema
 *                                    (field descriptions, defaults, examples, property names)
 *   MANIFEST_TOOL_SHADOWING          a tool named like another configured server's tool
 *
 * A finding names the tool, the field path, the pattern that matched and a short escaped
 * excerpt. Any finding flags its tool: the gateway withholds a flagged tool (ENFORCING)
 * until a grant names it. Pure and bounded: a hostile schema costs one walk of at most
 * MAX_SCHEMA_NODES nodes.
 */
export const MANIFEST_FINDING_CODES = [
  "MANIFEST_HIDDEN_UNICODE",
  "MANIFEST_MODEL_INSTRUCTION",
  "MANIFEST_CROSS_SERVER_REFERENCE",
  "MANIFEST_URL",
  "MANIFEST_SHELL_FRAGMENT",
  "MANIFEST_SCHEMA_INSTRUCTION",
  "MANIFEST_TOOL_SHADOWING",
] as const;
export type ManifestFindingCode = (typeof MANIFEST_FINDING_CODES)[number];
export type FindingSeverity = CueSeverity;

export interface ManifestFinding {
  readonly code: ManifestFindingCode;
  readonly severity: FindingSeverity;
  /**
   * The tool's name as the server lists it; for a prompt, resource or resource template its
   * surface key: `prompt:<name>`, `resource:<uri>`, `resourceTemplate:<uriTemplate>`.
   */
  readonly tool: string;
  /** Where in the tool: "description", "inputSchema.properties.path.description", "name". */
  readonly path: string;
  /** Which pattern matched, e.g. "call-first", "bidi-control", "peer-tool". */
  readonly cue: string;
  /** A short view of the text around the match, invisible characters written as \u{XXXX}. */
  readonly excerpt: string;
}

/** The parts of an MCP tool the scan reads; anything else is ignored. */
export interface ScannableTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema?: unknown;
  readonly outputSchema?: unknown;
  readonly annotations?: unknown;
}

/** Another configured server and its tools' names (empty while unknown). */
export interface ManifestPeer {
  readonly server: string;
  readonly tools: readonly string[];
  /**
   * Its tools' digests (see manifest-digest.ts), when known: a same-named tool that is
   * exactly the same tool (a second instance of one server) shadows nothing.
   */
  readonly digests?: Readonly<Record<string, string>>;
}

export interface ScanContext {
  readonly server: string;
  readonly peers?: readonly ManifestPeer[];
}

export interface ManifestScan {
  readonly findings: readonly ManifestFinding[];
  /** Names of the tools with at least one finding, in manifest order. */
  readonly flagged: readonly string[];
  /** Findings past the caps were dropped (their tools are still flagged). */
  readonly truncated: boolean;
}

export const MAX_FINDINGS_PER_TOOL = 32;
export const MAX_FINDINGS = 1000;
export const MAX_SCHEMA_NODES = 10_000;
export const MAX_SCHEMA_DEPTH = 64;

/** Schema keywords whose string values are prose a model reads. */
const PROSE_KEYS = new Set(["description", "title", "$comment"]);
/** Keywords whose values are property names, not schemas. */
const PROPERTY_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);

interface Sink {
  add(code: ManifestFindingCode, severity: FindingSeverity, path: string, cue: string, text: string, index: number, length: number): void;
}

/** A server's prompts, resources and resource templates, as far as the scan reads them. */
export interface ScannableSurfaces {
  readonly prompts?: readonly ScannablePrompt[];
  readonly resources?: readonly ScannableResource[];
  readonly resourceTemplates?: readonly ScannableResourceTemplate[];
}

export interface ScannablePrompt {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly arguments?: readonly { readonly name: string; readonly title?: string; readonly description?: string }[];
}

export interface ScannableResource {
  readonly uri: string;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
}

export interface ScannableResourceTemplate {
  readonly uriTemplate: string;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
}

/**
 * Scans the tools and, when given, the prompts, resources and resource templates with the
 * same rules. A prompt's or resource's findings and flag carry its surface key
 * (`prompt:<name>`, `resource:<uri>`, `resourceTemplate:<uriTemplate>`) where a tool's
 * carry its name, so grants and refusals name them the same way.
 */
export function scanManifest(tools: readonly ScannableTool[], context: ScanContext, surfaces: ScannableSurfaces = {}): ManifestScan {
  const peers = peerIndex(context, tools);
  const findings: ManifestFinding[] = [];
  const flagged: string[] = [];
  let truncated = false;
  const items: [string, (sink: Sink) => void][] = [
    ...tools.map((tool): [string, (sink: Sink) => void] => [tool.name, (sink) => scanTool(tool, peers, sink)]),
    ...(surfaces.prompts ?? []).map((prompt): [string, (sink: Sink) => void] => [surfaceKey("prompt", prompt.name), (sink) => scanPrompt(prompt, peers, sink)]),
    ...(surfaces.resources ?? []).map((resource): [string, (sink: Sink) => void] => [surfaceKey("resource", resource.uri), (sink) => scanResource(resource, resource.uri, "uri", peers, sink)]),
    ...(surfaces.resourceTemplates ?? []).map((template): [string, (sink: Sink) => void] => [
      surfaceKey("resourceTemplate", template.uriTemplate),
      (sink) => scanResource(template, template.uriTemplate, "uriTemplate", peers, sink),
    ]),
  ];
  for (const [name, scanItem] of items) {
    const tool = { name };
    const own: ManifestFinding[] = [];
    const seen = new Set<string>();
    let flaggedHere = false;
    const sink: Sink = {
      add(code, severity, path, cue, text, index, length) {
        const key = `${code}\u0000${path}\u0000${cue}`;
        if (seen.has(key)) return;
        seen.add(key);
        flaggedHere = true;
        if (own.length >= MAX_FINDINGS_PER_TOOL || findings.length + own.length >= MAX_FINDINGS) {
          truncated = true;
          return;
        }
        own.push({ code, severity, tool: tool.name, path, cue, excerpt: excerpt(text, index, length) });
      },
    };
    scanItem(sink);
    if (flaggedHere) flagged.push(tool.name);
    findings.push(...own);
  }
  return { findings, flagged, truncated };
}

/** The findings of one tool, grouped by tool name (for reports and refusals). */
export function findingsByTool(scan: ManifestScan): Map<string, ManifestFinding[]> {
  const out = new Map<string, ManifestFinding[]>();
  for (const f of scan.findings) {
    const list = out.get(f.tool);
    if (list === undefined) out.set(f.tool, [f]);
    else list.push(f);
  }
  for (const name of scan.flagged) if (!out.has(name)) out.set(name, []);
  return out;
}

/** One line per finding: `echo: MANIFEST_URL (medium) at description [url]: "…"`. */
export function describeFinding(f: ManifestFinding): string {
  return `${f.tool}: ${f.code} (${f.severity}) at ${f.path} [${f.cue}]: ${JSON.stringify(f.excerpt)}`;
}

function scanTool(tool: ScannableTool, peers: PeerIndex, sink: Sink): void {
  hiddenUnicode(tool.name, "name", sink);
  shadowing(tool, peers, sink);
  const annotations = isObject(tool.annotations) ? tool.annotations : undefined;
  const prose: [string, unknown][] = [
    ["title", tool.title],
    ["description", tool.description],
    ["annotations.title", annotations?.["title"]],
  ];
  for (const [path, text] of prose) {
    if (typeof text !== "string") continue;
    hiddenUnicode(text, path, sink);
    instructions(text, path, "MANIFEST_MODEL_INSTRUCTION", sink);
    descriptionText(text, path, peers, sink);
  }
  for (const [root, schema] of [
    ["inputSchema", tool.inputSchema],
    ["outputSchema", tool.outputSchema],
  ] as const) {
    if (schema !== undefined) walkSchema(schema, root, peers, sink);
  }
}

/**
 * A prompt: its name (hidden characters, impersonating another server's exposed name), its
 * prose (every description rule), and its arguments, whose names are read like a schema's
 * property names and whose descriptions like a schema's field descriptions.
 */
function scanPrompt(prompt: ScannablePrompt, peers: PeerIndex, sink: Sink): void {
  hiddenUnicode(prompt.name, "name", sink);
  impersonation(prompt.name, peers, sink);
  prose([
    ["title", prompt.title],
    ["description", prompt.description],
  ], peers, sink);
  const args = Array.isArray(prompt.arguments) ? prompt.arguments : [];
  args.slice(0, MAX_SCHEMA_NODES).forEach((arg, i) => {
    if (!isObject(arg)) return;
    const at = `arguments[${i}]`;
    if (typeof arg.name === "string") propertyName(arg.name, `${at}.name`, sink);
    for (const key of ["title", "description"] as const) {
      const text = arg[key];
      if (typeof text !== "string") continue;
      hiddenUnicode(text, `${at}.${key}`, sink);
      instructions(text, `${at}.${key}`, "MANIFEST_SCHEMA_INSTRUCTION", sink);
      descriptionText(text, `${at}.${key}`, peers, sink);
    }
  });
}

/**
 * A resource or template: hidden characters in its URI and name, instructions in its name,
 * and every description rule on its title and description. The URI itself is an address,
 * not prose: URL and shell rules do not read it.
 */
function scanResource(resource: ScannableResource | ScannableResourceTemplate, uri: string, uriField: "uri" | "uriTemplate", peers: PeerIndex, sink: Sink): void {
  hiddenUnicode(uri, uriField, sink);
  if (typeof resource.name === "string") {
    hiddenUnicode(resource.name, "name", sink);
    instructions(resource.name, "name", "MANIFEST_MODEL_INSTRUCTION", sink);
    impersonation(resource.name, peers, sink);
  }
  if (typeof resource.mimeType === "string") hiddenUnicode(resource.mimeType, "mimeType", sink);
  prose([
    ["title", resource.title],
    ["description", resource.description],
  ], peers, sink);
}

function prose(fields: readonly (readonly [string, unknown])[], peers: PeerIndex, sink: Sink): void {
  for (const [path, text] of fields) {
    if (typeof text !== "string") continue;
    hiddenUnicode(text, path, sink);
    instructions(text, path, "MANIFEST_MODEL_INSTRUCTION", sink);
    descriptionText(text, path, peers, sink);
  }
}

/** Rule (prompts, resources): a name written as another server's exposed name (`github__create_issue`). */
function impersonation(name: string, peers: PeerIndex, sink: Sink): void {
  const exposed = peers.exposed?.exec(name);
  if (exposed !== null && exposed !== undefined) sink.add("MANIFEST_TOOL_SHADOWING", "high", "name", "impersonates-exposed-name", name, exposed.index, exposed[0].length);
}

/** Rule: invisible and bidirectional Unicode. */
function hiddenUnicode(text: string, path: string, sink: Sink): void {
  const hidden = firstHiddenCharacter(text);
  if (hidden !== undefined) sink.add("MANIFEST_HIDDEN_UNICODE", "high", path, hidden.bidi ? "bidi-control" : "invisible-character", text, hidden.index, 1);
}

/** Rules: instructions aimed at the model (in a description, or anywhere in a schema). */
function instructions(text: string, path: string, code: "MANIFEST_MODEL_INSTRUCTION" | "MANIFEST_SCHEMA_INSTRUCTION", sink: Sink): void {
  report(matchCues(text, INSTRUCTION_CUES), code, path, text, sink);
}

/** Rules: URLs, shell fragments and references to other servers, in prose a model reads. */
function descriptionText(text: string, path: string, peers: PeerIndex, sink: Sink): void {
  report(matchCues(text, URL_CUES), "MANIFEST_URL", path, text, sink);
  report(matchCues(text, SHELL_CUES), "MANIFEST_SHELL_FRAGMENT", path, text, sink);
  report(matchCues(text, OTHER_SERVER_CUES), "MANIFEST_CROSS_SERVER_REFERENCE", path, text, sink);
  for (const [cue, pattern] of [
    ["peer-exposed-name", peers.exposed],
    ["peer-tool", peers.names],
  ] as const) {
    const m = pattern?.exec(text);
    if (m !== null && m !== undefined) sink.add("MANIFEST_CROSS_SERVER_REFERENCE", "high", path, cue, text, m.index, m[0].length);
  }
}

/** Rule: a tool named like another configured server's tool (or like one of its exposed names). */
function shadowing(tool: ScannableTool, peers: PeerIndex, sink: Sink): void {
  const name = tool.name;
  const exposed = peers.exposed?.exec(name);
  if (exposed !== null && exposed !== undefined) {
    sink.add("MANIFEST_TOOL_SHADOWING", "high", "name", "impersonates-exposed-name", name, exposed.index, exposed[0].length);
    return;
  }
  const peer = peers.normalized.get(normalizeToolName(name));
  if (peer === undefined || (peer.digest !== undefined && peer.digest === safeDigest(tool))) return;
  sink.add("MANIFEST_TOOL_SHADOWING", "medium", "name", `shadows ${peer.exposed}`, name, 0, name.length);
}

function safeDigest(tool: ScannableTool): string | undefined {
  try {
    return toolDigest(tool);
  } catch {
    return undefined; // too deep to hash: not provably the same tool
  }
}

function report(matches: readonly { cue: TextCue; index: number; length: number }[], code: ManifestFindingCode, path: string, text: string, sink: Sink): void {
  for (const m of matches) sink.add(code, m.cue.severity, path, m.cue.id, text, m.index, m.length);
}

/** Walks a JSON schema: prose fields get every description rule, other strings and property names the hidden and instruction rules. */
function walkSchema(schema: unknown, root: string, peers: PeerIndex, sink: Sink): void {
  let nodes = 0;
  let overflow = false;
  const visit = (node: unknown, path: string, depth: number, key: string | undefined): void => {
    if (++nodes > MAX_SCHEMA_NODES || depth > MAX_SCHEMA_DEPTH) {
      // What was not read cannot be trusted: the tool is flagged, once.
      if (!overflow) sink.add("MANIFEST_SCHEMA_INSTRUCTION", "medium", root, "too-large-to-scan", path, 0, path.length);
      overflow = true;
      return;
    }
    if (typeof node === "string") {
      hiddenUnicode(node, path, sink);
      instructions(node, path, "MANIFEST_SCHEMA_INSTRUCTION", sink);
      if (key !== undefined && PROSE_KEYS.has(key)) descriptionText(node, path, peers, sink);
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item: unknown, i) => visit(item, `${path}[${i}]`, depth + 1, undefined));
      return;
    }
    if (!isObject(node)) return;
    const namesProperties = key !== undefined && PROPERTY_MAPS.has(key);
    for (const [k, v] of Object.entries(node)) {
      const at = `${path}${segment(k)}`;
      if (namesProperties) propertyName(k, at, sink);
      visit(v, at, depth + 1, namesProperties ? undefined : k);
    }
  };
  visit(schema, root, 0, undefined);
}

/** A property name is read by the model too: `ignore_previous_instructions` is an instruction. */
function propertyName(name: string, path: string, sink: Sink): void {
  hiddenUnicode(name, path, sink);
  const spaced = name.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2");
  const matches = matchCues(name, INSTRUCTION_CUES);
  for (const m of matchCues(spaced, INSTRUCTION_CUES)) if (!matches.some((x) => x.cue.id === m.cue.id)) matches.push({ ...m, index: 0, length: name.length });
  report(matches, "MANIFEST_SCHEMA_INSTRUCTION", path, name, sink);
}

interface PeerIndex {
  /** `<peer>__<name>` for any configured peer. */
  readonly exposed?: RegExp;
  /** Peer tool names distinctive enough to be a reference (not this server's own). */
  readonly names?: RegExp;
  /** Normalized peer tool name → `<peer>__<tool>` and that tool's digest, if known. */
  readonly normalized: ReadonlyMap<string, { readonly exposed: string; readonly digest?: string }>;
}

/** Tool names compared case- and separator-insensitively: read_file, readFile and read-file are one name. */
export function normalizeToolName(name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, "");
}

function peerIndex(context: ScanContext, tools: readonly ScannableTool[]): PeerIndex {
  const peers = (context.peers ?? []).filter((p) => p.server !== context.server);
  const own = new Set(tools.map((t) => t.name));
  const normalized = new Map<string, { exposed: string; digest?: string }>();
  const distinctive = new Set<string>();
  for (const peer of peers) {
    for (const tool of peer.tools) {
      const key = normalizeToolName(tool);
      const digest = peer.digests !== undefined && Object.hasOwn(peer.digests, tool) ? peer.digests[tool] : undefined;
      if (key !== "" && !normalized.has(key)) normalized.set(key, { exposed: `${peer.server}${NAMESPACE_SEPARATOR}${tool}`, ...(digest !== undefined ? { digest } : {}) });
      // "echo" or "search" are words; "send_email" or "readFile" are names.
      if (!own.has(tool) && tool.length >= 5 && (/[_-]/.test(tool) || /[a-z][A-Z]/.test(tool))) distinctive.add(tool);
    }
  }
  const alternation = (names: Iterable<string>): string => [...names].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|");
  return {
    ...(peers.length > 0 ? { exposed: new RegExp(`(?<![\\w-])(?:${alternation(peers.map((p) => p.server))})${NAMESPACE_SEPARATOR}[\\w-]+`) } : {}),
    ...(distinctive.size > 0 ? { names: new RegExp(`(?<![\\w-])(?:${alternation(distinctive)})(?![\\w-])`) } : {}),
    normalized,
  };
}

function segment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
