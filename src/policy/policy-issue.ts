import type { CompiledPolicy } from "../core/policy/compiled-policy.js";
import type { Policy } from "../core/policy/policy-schema.js";

export type IssueSeverity = "error" | "warning";
export type IssuePath = readonly (string | number)[];

/**
 * One problem found in a policy file, positioned so an editor can jump to it.
 * `code` is stable: zod's issue codes (`invalid_type`, `unrecognized_keys`, `custom`, ...),
 * `yaml_<code>` for YAML parse errors (`yaml_duplicate_key`, `yaml_bad_indent`, ...), and
 * `file_not_found`, `file_unreadable`, `file_too_large`, `file_not_utf8`, `empty_document`,
 * `not_a_mapping`, `policy_warning` for the rest. Warnings with a rule of their own name it:
 * `wildcard_over_public_suffix`, `cidr_covers_local_addresses` (see egress-warnings.ts).
 */
export interface PolicyIssue {
  readonly file: string;
  /** 1-based. 0 when the problem is the file as a whole (missing, unreadable). */
  readonly line: number;
  /** 1-based. 0 together with `line`. */
  readonly col: number;
  readonly path: IssuePath;
  readonly message: string;
  readonly severity: IssueSeverity;
  readonly code: string;
}

export type PolicyLoadResult =
  | { readonly ok: true; readonly policy: Policy; readonly compiled: CompiledPolicy; readonly warnings: readonly PolicyIssue[] }
  | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

/** Issues in reading order, so a long report follows the file top to bottom. */
export function sortIssues(issues: readonly PolicyIssue[]): PolicyIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}
