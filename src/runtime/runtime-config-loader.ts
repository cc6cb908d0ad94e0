import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import { HangarError } from "../core/errors.js";
import { RuntimeConfigSchema, defaultRuntimeConfig, type RuntimeConfig } from "./runtime-config.js";

/** One problem in hangar.yaml, positioned like policy issues: `file:line:col: path: message`. */
export interface RuntimeConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly code: string;
}

export function formatRuntimeConfigIssue(issue: RuntimeConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return `${where}: ${path}${issue.message}`;
}

const MAX_BYTES = 256 * 1024;

/** Offset of the deepest node along `path` (of its key when `atKey`, or when the value is missing). */
function offsetOf(root: unknown, path: readonly (string | number)[], atKey = false): number {
  let node = root as Node | null | undefined;
  let offset = (node as { range?: number[] } | null)?.range?.[0] ?? 0;
  for (const [index, segment] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) break;
      offset = (pair.key as { range?: number[] }).range?.[0] ?? offset;
      if (atKey && index === path.length - 1) break;
      node = pair.value as Node | null;
      offset = (node as { range?: number[] } | null)?.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment] as Node | undefined;
      offset = (node as { range?: number[] } | undefined)?.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

/**
 * hangar.yaml is one file for the runtime and the gateway. The gateway validates its own
 * sections strictly when it serves; verbs that only start sandboxes (run, image build,
 * replay) read the runtime sections and leave those to it, still refusing any other key.
 */
export const GATEWAY_KEYS: readonly string[] = ["servers", "identity", "audit", "rbac", "gateway", "approvals", "flows"];

function withoutGatewayKeys(data: unknown): unknown {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return data;
  return Object.fromEntries(Object.entries(data).filter(([k]) => !GATEWAY_KEYS.includes(k)));
}

/** Parses hangar.yaml text; all issues at once, each with line, column and path. */
export function parseRuntimeConfig(text: string, file: string): { ok: true; config: RuntimeConfig } | { ok: false; issues: RuntimeConfigIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: [], message: e.message.split("\n")[0] ?? e.message, code: `yaml_${e.code.toLowerCase()}` };
      }),
    };
  }
  const data = withoutGatewayKeys(doc.contents === null ? {} : (doc.toJS() as unknown));
  const result = RuntimeConfigSchema.safeParse(data ?? {});
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    issues: result.error.issues
      .map((iss) => {
        const path = iss.path.map((p) => (typeof p === "symbol" ? String(p) : p));
        const keys = iss.code === "unrecognized_keys" ? (iss as { keys?: string[] }).keys ?? [] : [];
        // An unknown key is reported at the key itself, so the editor jumps to the typo.
        const at = keys.length > 0 ? [...path, keys[0]!] : path;
        const pos = lines.linePos(offsetOf(doc.contents, at, keys.length > 0));
        return { file, line: pos.line, col: pos.col, path, message: iss.message, code: iss.code };
      })
      .sort((a, b) => a.line - b.line || a.col - b.col),
  };
}

/**
 * Loads hangar.yaml. No file given: the defaults. A file given but unreadable or invalid:
 * HangarError HANGAR_CONFIG_INVALID whose message lists every issue and whose
 * `data.issues` holds them structured.
 */
export async function loadRuntimeConfig(file?: string): Promise<RuntimeConfig> {
  if (file === undefined) return defaultRuntimeConfig();
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
    text = bytes.toString("utf8");
  } catch (cause) {
    const issue: RuntimeConfigIssue = { file, line: 0, col: 0, path: [], message: `cannot read: ${(cause as Error).message}`, code: "file_unreadable" };
    throw new HangarError("HANGAR_CONFIG_INVALID", formatRuntimeConfigIssue(issue), { cause, data: { issues: [issue] } });
  }
  const result = parseRuntimeConfig(text, file);
  if (result.ok) return withPathsFrom(result.config, file);
  throw new HangarError("HANGAR_CONFIG_INVALID", result.issues.map(formatRuntimeConfigIssue).join("\n"), { data: { issues: result.issues } });
}

/** Paths in hangar.yaml are relative to the file itself, not to wherever the command ran. */
function withPathsFrom(config: RuntimeConfig, file: string): RuntimeConfig {
  const ca = config.runtime.upstreamCaFile;
  if (ca === undefined) return config;
  return { ...config, runtime: { ...config.runtime, upstreamCaFile: resolve(dirname(file), ca) } };
}
