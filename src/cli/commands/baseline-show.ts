import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { formatBaseline, loadBaselineFile } from "../../baseline/index.js";
import { formatIssues } from "../../policy/index.js";

export const baselineShowCommand = defineCommand({
  name: "show",
  summary: "Summarise a baseline: destinations, DNS lookups, tools and their rates",
  usage: "hangar baseline show <file> [--json]",
  description: "Prints what a baseline says the server does: each destination with its connection rate and bytes,\neach DNS lookup, and each tool with its call rate and the destinations it reaches.",
  options: { json: { type: "boolean", description: "Print the baseline itself as JSON." }, },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 on success, 1 when the file is not a valid baseline, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const result = await loadBaselineFile(positionals[0] ?? "");
    if (!result.ok) {
      io.err(formatIssues(result.issues));
      return EXIT_FINDING;
    }
    if (values.json === true) io.out(`${JSON.stringify(result.baseline, null, 2)}\n`);
    else io.out(formatBaseline(result.baseline));
    return EXIT_OK;
  },
});
