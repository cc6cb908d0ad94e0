import { isMap, isScalar, LineCounter, parseDocument, type YAMLError } from "yaml";
import { sortIssues, type PolicyIssue } from "./policy-issue.js";
import { createYamlLocator, type YamlLocator } from "./yaml-locator.js";

/** Aliases may expand at most this many times: a hand-written file never needs more, a YAML bomb does. */
const MAX_ALIAS_COUNT = 50;

export interface YamlMappingWording {
  /** "policy", "scenario". */
  readonly noun: string;
  /** Said when the document is empty, e.g. "it needs at least version, name and server". */
  readonly emptyHint: string;
}

export type YamlMappingResult =
  | { readonly ok: true; readonly data: Record<string, unknown>; readonly locator: YamlLocator; readonly warnings: readonly PolicyIssue[] }
  | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

/**
 * The YAML front end shared by every hand-written Hangar file: one document, a mapping at
 * the top, JSON-like data only, every problem an issue with a position. Pure: `file` only
 * labels issues. Schema validation is the caller's (see `schemaIssues`).
 */
export function parseYamlMapping(text: string, file: string, wording: YamlMappingWording): YamlMappingResult {
  const lines = new LineCounter();
  // resolveKnownTags: false keeps `!!binary`, `!!set` and the like as plain strings and
  // maps, so the file only ever holds JSON-like data.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, resolveKnownTags: false });
  const locator = createYamlLocator(doc, lines);
  const yamlIssues = [
    ...doc.errors.map((e) => yamlIssue(e, "error", locator, file, wording)),
    ...doc.warnings.map((e) => yamlIssue(e, "warning", locator, file, wording)),
  ];
  if (doc.errors.length > 0) return { ok: false, issues: sortIssues(yamlIssues) };

  const contents = doc.contents;
  if (!isMap(contents)) {
    const empty = contents === null || (isScalar(contents) && contents.value === null);
    const { line, col } = locator.at([]);
    const issue: PolicyIssue = empty
      ? { file, line, col, path: [], severity: "error", code: "empty_document", message: `the file holds no ${wording.noun}; ${wording.emptyHint}` }
      : { file, line, col, path: [], severity: "error", code: "not_a_mapping", message: `a ${wording.noun} must be a mapping (key: value lines) at the top level` };
    return { ok: false, issues: sortIssues([...yamlIssues, issue]) };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml throws (rather than reporting) when aliases expand past the limit.
    const { line, col } = locator.at([]);
    const message = `YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} times); a ${wording.noun} never needs this (${(err as Error).message})`;
    return { ok: false, issues: [{ file, line, col, path: [], severity: "error", code: "yaml_resource_exhaustion", message }] };
  }
  return { ok: true, data: data as Record<string, unknown>, locator, warnings: sortIssues(yamlIssues) };
}

function yamlIssue(error: YAMLError, severity: "error" | "warning", locator: YamlLocator, file: string, wording: YamlMappingWording): PolicyIssue {
  const offset = error.pos[0];
  const { line, col } = locator.position(offset);
  const code = `yaml_${error.code.toLowerCase()}`;
  if (error.code === "DUPLICATE_KEY") {
    // The tree is sound around a duplicate key, so the path is worth giving.
    const path = locator.pathAt(offset);
    const key = path.at(-1);
    const message = `duplicate key${key === undefined ? "" : ` ${JSON.stringify(key)}`}; keys in a mapping must be unique`;
    return { file, line, col, path, message, severity, code };
  }
  const text = error.code === "MULTIPLE_DOCS" ? `a ${wording.noun} file holds one YAML document; remove the second ---` : (error.message.split("\n")[0] ?? error.message);
  const message = `${severity === "error" ? "YAML syntax error" : "YAML"}: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
  return { file, line, col, path: [], message, severity, code };
}
