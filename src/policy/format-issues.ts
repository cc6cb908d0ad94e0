import type { IssuePath, PolicyIssue } from "./policy-issue.js";

/** Pure presentation of policy issues. Nothing here reads files or decides validity. */

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `egress.allow[2].cidr`; keys that are not plain words are quoted: `server.env["a.b"]`. */
export function formatPath(path: IssuePath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * `file:line:col: path: message`, or `file:line:col: warning: path: message`.
 * The path is left out when the issue is about the whole document, and line:col when it
 * is about the file itself (missing, unreadable).
 */
export function formatIssue(issue: PolicyIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  const severity = issue.severity === "warning" ? "warning: " : "";
  const path = issue.path.length > 0 ? `${formatPath(issue.path)}: ` : "";
  return `${where}: ${severity}${path}${issue.message}`;
}

/** One line per issue, each ending in a newline (empty string for no issues). */
export function formatIssues(issues: readonly PolicyIssue[]): string {
  return issues.map((i) => `${formatIssue(i)}\n`).join("");
}

export interface IssueCounts {
  readonly errors: number;
  readonly warnings: number;
}

export function countIssues(issues: readonly PolicyIssue[]): IssueCounts {
  const errors = issues.filter((i) => i.severity === "error").length;
  return { errors, warnings: issues.length - errors };
}

export interface FileIssuesJson {
  readonly file: string;
  readonly ok: boolean;
  readonly errors: number;
  readonly warnings: number;
  readonly issues: readonly (PolicyIssue & { readonly pathText: string })[];
}

/** Whether issues fail a check: any error does, and with `strict` any warning too. */
export function issuesFail(counts: IssueCounts, options: { readonly strict?: boolean } = {}): boolean {
  return counts.errors > 0 || (options.strict === true && counts.warnings > 0);
}

/** The machine-readable form: one entry per file, `ok` false when the file has an error (or, with `strict`, a warning). */
export function issuesToJson(file: string, issues: readonly PolicyIssue[], options: { readonly strict?: boolean } = {}): FileIssuesJson {
  const counts = countIssues(issues);
  return {
    file,
    ok: !issuesFail(counts, options),
    ...counts,
    issues: issues.map((i) => ({ ...i, pathText: formatPath(i.path) })),
  };
}
