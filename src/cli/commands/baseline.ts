import { defineGroup } from "../define-command.js";
import { baselineDiffCommand } from "./baseline-diff.js";
import { baselineFreezeCommand } from "./baseline-freeze.js";
import { baselineRecordCommand } from "./baseline-record.js";
import { baselineShowCommand } from "./baseline-show.js";
import { baselineToPolicyCommand } from "./baseline-to-policy.js";

export const baselineCommand = defineGroup({
  name: "baseline",
  summary: "Record, inspect, compare and freeze behavioural baselines",
  usage: "hangar baseline <command> [options]",
  description:
    "A baseline records what one server normally does: the hosts and ports it reaches, the DNS names it asks,\n" +
    "the tools it is called with and how often. It is learned, then frozen by an explicit command; a frozen\n" +
    "baseline is a reviewable JSON file, diffed in git and compared against in CI.",
  commands: [baselineRecordCommand, baselineShowCommand, baselineDiffCommand, baselineFreezeCommand, baselineToPolicyCommand],
});
