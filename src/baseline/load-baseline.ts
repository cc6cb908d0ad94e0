import { LineCounter, parseDocument } from "yaml";
import { BaselineSchema, baselineJsonSchema, type Baseline } from "../core/baseline/baseline-schema.js";
import { canonicalBaseline } from "../core/baseline/canonical.js";
import { createYamlLocator, knownKeysAt, readTextFile, schemaIssues, sortIssues, type PolicyIssue } from "../policy/index.js";

/** A baseline of a busy server is large, but not this large. */
export const MAX_BASELINE_BYTES = 16 * 1024 * 1024;

export type BaselineLoadResult = { readonly ok: true; readonly baseline: Baseline } | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

type JsonSchemaArg = Parameters<typeof knownKeysAt>[1];

/**
 * Parses and validates baseline JSON. Problems come back as issues positioned like policy
 * issues (`file:line:col: path: message`). A valid baseline comes back canonical (sorted),
 * so a hand-edited file compares and re-serialises like a recorded one. Pure.
 */
export function parseBaselineText(text: string, file: string): BaselineLoadResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, issues: [jsonSyntaxIssue(text, file, err as Error)] };
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: [], severity: "error", code: "not_a_mapping", message: "a baseline must be a JSON object" }] };
  }
  const parsed = BaselineSchema.safeParse(data);
  if (parsed.success) return { ok: true, baseline: canonicalBaseline(parsed.data) };
  // JSON is YAML 1.2, so the YAML locator gives positions; only paid for on failure.
  const lines = new LineCounter();
  const locator = createYamlLocator(parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines);
  const schema = baselineJsonSchema() as JsonSchemaArg;
  return { ok: false, issues: sortIssues(schemaIssues(parsed.error.issues, locator, file, (path) => knownKeysAt(path, schema))) };
}

function jsonSyntaxIssue(text: string, file: string, err: Error): PolicyIssue {
  const at = /at position (\d+)/.exec(err.message);
  const offset = at !== null ? Number(at[1]) : text.length;
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const col = offset - before.lastIndexOf("\n");
  const reason = err.message.replace(/ in JSON at position \d+.*$/, "").replace(/ of JSON input$/, "");
  return { file, line, col, path: [], severity: "error", code: "json_syntax", message: `JSON syntax error: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}` };
}

export async function loadBaselineFile(path: string, options: { readonly displayName?: string } = {}): Promise<BaselineLoadResult> {
  const file = options.displayName ?? path;
  const read = await readTextFile(path, { displayName: file, maxBytes: MAX_BASELINE_BYTES, noun: "baseline file" });
  if (!read.ok) return read;
  return parseBaselineText(read.text, file);
}
