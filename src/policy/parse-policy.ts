import { compilePolicy, policyWarnings } from "../core/policy/compiled-policy.js";
import { PolicySchema } from "../core/policy/policy-schema.js";
import { egressWarnings } from "./egress-warnings.js";
import { sortIssues, type IssuePath, type PolicyIssue, type PolicyLoadResult } from "./policy-issue.js";
import { schemaIssues } from "./schema-issues.js";
import { parseYamlMapping } from "./yaml-mapping.js";

/**
 * Parses and validates policy text. Pure: `file` is only used to label issues.
 * Every problem comes back as an issue with a position; nothing here throws on bad input.
 */
export function parsePolicyText(text: string, file: string): PolicyLoadResult {
  const yaml = parseYamlMapping(text, file, { noun: "policy", emptyHint: "it needs at least version, name and server" });
  if (!yaml.ok) return yaml;
  const { data, locator } = yaml;

  const parsed = PolicySchema.safeParse(data);
  if (!parsed.success) return { ok: false, issues: sortIssues([...yaml.warnings, ...schemaIssues(parsed.error.issues, locator, file)]) };

  const compiled = compilePolicy(parsed.data);
  const warning = (w: { readonly path: IssuePath; readonly message: string; readonly code?: string }): PolicyIssue => {
    const { line, col } = locator.at(w.path);
    return { file, line, col, path: w.path, message: w.message, severity: "warning", code: w.code ?? "policy_warning" };
  };
  const warnings = [...policyWarnings(compiled).map(warning), ...egressWarnings(parsed.data).map(warning)];
  return { ok: true, policy: parsed.data, compiled, warnings: sortIssues([...yaml.warnings, ...warnings]) };
}
