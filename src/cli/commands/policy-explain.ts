import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { explainPolicy, formatExplanation, formatIssues, issuesToJson, loadPolicyFile } from "../../policy/index.js";

export const policyExplainCommand = defineCommand({
  name: "explain",
  summary: "Say in plain words what a policy allows",
  usage: "hangar policy explain <file> [--json]",
  description:
    "Prints the effective rules of a policy: the mode and what it means, each allowed destination\n" +
    "with its ports (names as the sidecar compares them: lowercase, punycode), DNS answers, capture,\n" +
    "tools, baseline, secrets (names only), mounts and resources.",
  options: {
    json: { type: "boolean", description: "Print the explanation as JSON." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when the policy is valid, 1 when it has errors (they are printed instead), 2 on a usage error.",
  async run({ values, positionals }, io) {
    const file = positionals[0] ?? "";
    const result = await loadPolicyFile(file);
    if (!result.ok) {
      if (values.json === true) io.out(`${JSON.stringify(issuesToJson(file, result.issues), null, 2)}\n`);
      else io.err(formatIssues(result.issues));
      return EXIT_FINDING;
    }
    const explanation = explainPolicy(result.compiled);
    if (values.json === true) io.out(`${JSON.stringify({ file, ok: true, explanation }, null, 2)}\n`);
    else io.out(formatExplanation(explanation));
    return EXIT_OK;
  },
});
