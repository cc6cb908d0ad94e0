import { isMap, isScalar, LineCounter, parseDocument, type YAMLError } from "yaml";
import { compilePolicy, policyWarnings } from "../core/policy/compiled-policy.js";
import { PolicySchema } from "../core/policy/policy-schema.js";
import { sortIssues, type PolicyIssue, type PolicyLoadResult } from "./policy-issue.js";
import { schemaIssues } from "./schema-issues.js";
import { createYamlLocator, type YamlLocator } from "./yaml-locator.js";

/** Aliases may expand at most this many times: a policy never needs more, a YAML bomb does. */
const MAX_ALIAS_COUNT = 50;

/**
 * Parses and validates policy text. Pure: `file` is only used to label issues.
 * Every problem comes back as an issue with a position; nothing here throws on bad input.
 */
export function parsePolicyText(text: string, file: string): PolicyLoadResult {
  const lines = new LineCounter();
  // resolveKnownTags: false keeps `!!binary`, `!!set` and the like as plain strings and
  // maps, so a policy only ever holds JSON-like data.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, resolveKnownTags: false });
  const locator = createYamlLocator(doc, lines);
  const yamlIssues = [
    ...doc.errors.map((e) => yamlIssue(e, "error", locator, file)),
    ...doc.warnings.map((e) => yamlIssue(e, "warning", locator, file)),
  ];
  if (doc.errors.length > 0) return { ok: false, issues: sortIssues(yamlIssues) };

  const contents = doc.contents;
  if (!isMap(contents)) {
    const empty = contents === null || (isScalar(contents) && contents.value === null);
    const { line, col } = locator.at([]);
    const issue: PolicyIssue = empty
      ? { file, line, col, path: [], severity: "error", code: "empty_document", message: "the file holds no policy; it needs at least version, name and server" }
      : { file, line, col, path: [], severity: "error", code: "not_a_mapping", message: "a policy must be a mapping (key: value lines) at the top level" };
    return { ok: false, issues: sortIssues([...yamlIssues, issue]) };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml throws (rather than reporting) when aliases expand past the limit.
    const { line, col } = locator.at([]);
    const message = `YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} times); a policy never needs this (${(err as Error).message})`;
    return { ok: false, issues: [{ file, line, col, path: [], severity: "error", code: "yaml_resource_exhaustion", message }] };
  }

  const parsed = PolicySchema.safeParse(data);
  if (!parsed.success) return { ok: false, issues: sortIssues([...yamlIssues, ...schemaIssues(parsed.error.issues, locator, file)]) };

  const compiled = compilePolicy(parsed.data);
  const warnings = policyWarnings(compiled).map((w): PolicyIssue => {
    const { line, col } = locator.at(w.path);
    return { file, line, col, path: w.path, message: w.message, severity: "warning", code: "policy_warning" };
  });
  return { ok: true, policy: parsed.data, compiled, warnings: sortIssues([...yamlIssues, ...warnings]) };
}

function yamlIssue(error: YAMLError, severity: "error" | "warning", locator: YamlLocator, file: string): PolicyIssue {
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
  const text = error.code === "MULTIPLE_DOCS" ? "a policy file holds one YAML document; remove the second ---" : (error.message.split("\n")[0] ?? error.message);
  const message = `${severity === "error" ? "YAML syntax error" : "YAML"}: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
  return { file, line, col, path: [], message, severity, code };
}
