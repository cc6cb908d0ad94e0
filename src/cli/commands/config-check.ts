import { loadHangarConfig } from "../../gateway/config/load-hangar-config.js";
import { countIssues, formatIssues, issuesFail, issuesToJson, type PolicyIssue } from "../../policy/index.js";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export const configCheckCommand = defineCommand({
  name: "check",
  summary: "Check hangar.yaml and every policy it names, reporting every problem at once",
  usage: "hangar config check [--config <file>] [--json] [--strict]",
  description:
    "Reads hangar.yaml and every policy file its servers list names, and prints every problem of\n" +
    "all of them in one pass, one per line, as\n" +
    "  file:line:col: path: message\n" +
    "(warnings as file:line:col: warning: path: message). hangar serve runs the same check before it starts.",
  options: {
    config: CONFIG_OPTION,
    json: { type: "boolean", description: "Print one JSON document with every file's issues instead." },
    strict: { type: "boolean", description: "Fail on warnings too." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 when no file has an error (warnings do not fail, unless --strict), 1 when any has, 2 on a usage error.",
  async run({ values }, io) {
    const file = values.config ?? DEFAULT_CONFIG;
    const strict = values.strict === true;
    const loaded = await loadHangarConfig(file);
    const issues = loaded.ok ? loaded.warnings : loaded.issues;
    const counts = countIssues(issues);
    const failed = issuesFail(counts, { strict });
    const files = loaded.ok ? [file, ...loaded.config.servers.map((s) => s.policyFile)] : [file];
    if (values.json === true) {
      const byFile = new Map<string, PolicyIssue[]>(files.map((f) => [f, []]));
      for (const issue of issues) byFile.set(issue.file, [...(byFile.get(issue.file) ?? []), issue]);
      const json = [...byFile].map(([f, list]) => issuesToJson(f, list, { strict }));
      io.out(`${JSON.stringify({ ok: !failed, config: file, ...counts, ...(strict ? { strict } : {}), files: json }, null, 2)}\n`);
    } else {
      io.out(formatIssues(issues));
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
      const servers = loaded.ok ? `, ${plural(loaded.config.servers.length, "server")}` : "";
      io.err(`${file}${servers}: ${counts.errors === 0 ? "no errors" : plural(counts.errors, "error")}${counts.warnings > 0 ? `, ${plural(counts.warnings, "warning")}` : ""}\n`);
    }
    return failed ? EXIT_FINDING : EXIT_OK;
  },
});
