import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { countIssues, formatIssues, issuesFail, issuesToJson, loadPolicyFile, type PolicyIssue } from "../../policy/index.js";

export const policyLintCommand = defineCommand({
  name: "lint",
  summary: "Check policy files and report every problem with its line and column",
  usage: "hangar policy lint <file...> [--json] [--strict]",
  description:
    "Checks each policy file and prints every problem, one per line, as\n" +
    "  file:line:col: path: message\n" +
    "Warnings (valid, but probably not what you meant) print as\n" +
    "  file:line:col: warning: path: message\n" +
    "for example a wildcard directly over a public suffix (*.com, *.co.uk, *.github.io), or a\n" +
    "CIDR rule that includes loopback, link-local or cloud metadata addresses.",
  options: {
    json: { type: "boolean", description: "Print one JSON document with every file's issues instead." },
    strict: { type: "boolean", description: "Fail on warnings too." },
  },
  positionals: { min: 1 },
  details: "Exit status: 0 when no file has an error (warnings do not fail, unless --strict), 1 when any file has an error (or, with --strict, a warning), 2 on a usage error.",
  async run({ values, positionals }, io) {
    const strict = values.strict === true;
    const results = await Promise.all(
      positionals.map(async (file): Promise<{ file: string; issues: readonly PolicyIssue[] }> => {
        const result = await loadPolicyFile(file);
        return { file, issues: result.ok ? result.warnings : result.issues };
      }),
    );
    const all = results.flatMap((r) => r.issues);
    const counts = countIssues(all);
    const failed = issuesFail(counts, { strict });
    if (values.json === true) {
      const files = results.map((r) => issuesToJson(r.file, r.issues, { strict }));
      io.out(`${JSON.stringify({ ok: !failed, ...counts, ...(strict ? { strict } : {}), files }, null, 2)}\n`);
    } else {
      io.out(formatIssues(all));
      const withErrors = results.filter((r) => countIssues(r.issues).errors > 0).length;
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
      io.err(
        `${plural(results.length, "file")} checked: ${withErrors === 0 ? "no errors" : `${plural(counts.errors, "error")} in ${plural(withErrors, "file")}`}` +
          `${counts.warnings > 0 ? `, ${plural(counts.warnings, "warning")}${strict ? " (--strict: warnings fail)" : ""}` : ""}\n`,
      );
    }
    return failed ? EXIT_FINDING : EXIT_OK;
  },
});
