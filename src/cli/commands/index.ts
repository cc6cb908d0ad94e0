import type { Command } from "../command.js";
import { baselineCommand } from "./baseline.js";
import { auditCommand } from "./audit.js";
import { initCommand } from "./init.js";
import { policyCommand } from "./policy.js";

/**
 * Every top-level verb of `hangar`, in the order `hangar --help` lists them.
 * To add one: write src/cli/commands/<verb>.ts exporting a Command (defineCommand for a
 * leaf, defineGroup for a verb with sub-verbs) and append it here.
 */
export const commands: readonly Command[] = [initCommand, policyCommand, baselineCommand, auditCommand];
