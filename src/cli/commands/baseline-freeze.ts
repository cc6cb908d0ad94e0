import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { loadBaselineFile, writeBaselineFile } from "../../baseline/index.js";
import { freezeBaseline } from "../../core/baseline/index.js";
import { formatIssues } from "../../policy/index.js";

export const baselineFreezeCommand = defineCommand({
  name: "freeze",
  summary: "Freeze a learning baseline so drift is measured against it",
  usage: "hangar baseline freeze <file> [--at <time>]",
  description:
    "Turns a learning baseline into a frozen one, in place. The file is replaced atomically (written\n" +
    "beside it, then renamed over it). Only a frozen baseline is used for drift detection and replay.\n" +
    "Commit the frozen file and review later changes to it like code.",
  options: {
    at: { type: "string", valueName: "<time>", description: "Record this ISO time as frozenAt instead of now (for reproducible files)." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 when the baseline is frozen (or already was), 1 when the file is not a valid baseline, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const file = positionals[0] ?? "";
    const at = values.at === undefined ? new Date() : new Date(values.at);
    if (Number.isNaN(at.getTime())) throw usageError(`--at ${JSON.stringify(values.at)} is not a time; use ISO 8601, e.g. 2025-01-31T12:00:00Z`);
    const result = await loadBaselineFile(file);
    if (!result.ok) {
      io.err(formatIssues(result.issues));
      return EXIT_FINDING;
    }
    if (result.baseline.status === "frozen") {
      io.err(`${file}: already frozen at ${result.baseline.frozenAt ?? "?"}; left unchanged\n`);
      return EXIT_OK;
    }
    const frozen = freezeBaseline(result.baseline, at);
    await writeBaselineFile(file, frozen);
    io.err(`${file}: frozen at ${frozen.frozenAt} (${frozen.destinations.length} destinations, ${frozen.dns.length} DNS lookups, ${frozen.tools.length} tools)\n`);
    return EXIT_OK;
  },
});
