import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { egressRulesFor, formatEgressRules, formatToolLabelSuggestions, loadBaselineFile, suggestToolLabels } from "../../baseline/index.js";
import { formatIssues } from "../../policy/index.js";

export const baselineToPolicyCommand = defineCommand({
  name: "to-policy",
  summary: "Print the egress allow rules the observed behaviour needs, as policy YAML",
  usage: "hangar baseline to-policy <file> [--json]",
  description:
    "Prints an egress section for a policy that allows exactly what the baseline saw: each host with\n" +
    "the ports it was reached on, IP addresses as /32 CIDRs, and DNS record types beyond A when they\n" +
    "were asked for. Paste it at the top level of the server's policy, replacing its egress section.\n" +
    "Below it, as comments: the tool labels the behaviour suggests for hangar.yaml's flows (a tool that\n" +
    "reached a destination outside its sandbox is sends-external).",
  options: { json: { type: "boolean", description: "Print the egress rules as JSON instead of YAML." }, },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 on success, 1 when the file is not a valid baseline, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const result = await loadBaselineFile(positionals[0] ?? "");
    if (!result.ok) {
      io.err(formatIssues(result.issues));
      return EXIT_FINDING;
    }
    if (values.json === true) io.out(`${JSON.stringify({ server: result.baseline.server, egress: egressRulesFor(result.baseline), toolLabels: suggestToolLabels(result.baseline) }, null, 2)}\n`);
    else io.out(formatEgressRules(result.baseline) + formatToolLabelSuggestions(result.baseline));
    return EXIT_OK;
  },
});
