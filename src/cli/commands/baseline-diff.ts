import { EXIT_FINDING, EXIT_OK, EXIT_USAGE } from "../command.js";
import { defineCommand } from "../define-command.js";
import { formatBaselineDiff, loadBaselineFile } from "../../baseline/index.js";
import { diffBaselines } from "../../core/baseline/index.js";
import { formatIssues, issuesToJson } from "../../policy/index.js";

export const baselineDiffCommand = defineCommand({
  name: "diff",
  summary: "Show how the behaviour in two baselines differs",
  usage: "hangar baseline diff <a> <b> [--json]",
  description:
    "Compares two baselines of a server: destinations, DNS lookups, tools and tunnelling signals added (+),\n" +
    "removed (-) or changed (~), and settings such as the rate tolerance. Counts, byte totals and\n" +
    "timestamps change with every recording and are not differences.",
  options: {
    json: { type: "boolean", description: "Print the differences as JSON." },
  },
  positionals: { min: 2, max: 2 },
  details: "Exit status: 0 when the behaviour is the same, 1 when it differs, 2 when a file is not a valid baseline or on a usage error.",
  async run({ values, positionals }, io) {
    const [fileA = "", fileB = ""] = positionals;
    const [a, b] = await Promise.all([loadBaselineFile(fileA), loadBaselineFile(fileB)]);
    if (!a.ok || !b.ok) {
      const failed = [...(a.ok ? [] : [{ file: fileA, issues: a.issues }]), ...(b.ok ? [] : [{ file: fileB, issues: b.issues }])];
      if (values.json === true) io.out(`${JSON.stringify({ ok: false, files: failed.map((f) => issuesToJson(f.file, f.issues)) }, null, 2)}\n`);
      else io.err(failed.map((f) => formatIssues(f.issues)).join(""));
      return EXIT_USAGE;
    }
    const diff = diffBaselines(a.baseline, b.baseline);
    if (values.json === true) io.out(`${JSON.stringify({ files: { a: fileA, b: fileB }, ...diff }, null, 2)}\n`);
    else io.out(formatBaselineDiff(diff, { a: fileA, b: fileB }));
    return diff.same ? EXIT_OK : EXIT_FINDING;
  },
});
