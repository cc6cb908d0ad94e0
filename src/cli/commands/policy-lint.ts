import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { countIssues, formatIssues, issuesToJson, loadPolicyFile, type PolicyIssue } from "../../policy/index.js";

export const policyLintCommand = defineCommand({
  name: "lint",
  summary: "Check policy files and report every problem with its line and column",
  usage: "hangar policy lint <file...> [--json]",
  description:
    "Checks each policy file and prints every problem, one per line, as\n" +
    "  file:line:col: path: message\n" +
    "Warnings (valid, but probably not what you meant) print as\n" +
    "  file:line:col: warning: path: message",
  options: {
    json: { type: "boolean", description: "Print one JSON document with every file's issues instead." },
  },
  positionals: { min: 1 },
  details: "Exit status: 0 when no file has an error (warnings do not fail), 1 when any file has an error, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const results = await Promise.all(
      positionals.map(async (file): Promise<{ file: string; issues: readonly PolicyIssue[] }> => {
        const result = await loadPolicyFile(file);
        return { file, issues: result.ok ? result.warnings : result.issues };
      }),
    );
    const all = results.flatMap((r) => r.issues);
    const counts = countIssues(all);
    if (values.json === true) {
      const files = results.map((r) => issuesToJson(r.file, r.issues));
      io.out(`${JSON.stringify({ ok: counts.errors === 0, ...counts, files }, null, 2)}\n`);
    } else {
      io.out(formatIssues(all));
      const failed = results.filter((r) => countIssues(r.issues).errors > 0).length;
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
      io.err(
        `${plural(results.length, "file")} checked: ${failed === 0 ? "no errors" : `${plural(counts.errors, "error")} in ${plural(failed, "file")}`}` +
          `${counts.warnings > 0 ? `, ${plural(counts.warnings, "warning")}` : ""}\n`,
      );
    }
    return counts.errors > 0 ? EXIT_FINDING : EXIT_OK;
  },
});
