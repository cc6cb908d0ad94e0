import type { Command } from "../command.js";
import { baselineCommand } from "./baseline.js";
import { auditCommand } from "./audit.js";
import { initCommand } from "./init.js";
import { policyCommand } from "./policy.js";
import { serveCommand } from "./serve.js";
import { statusCommand } from "./status.js";
import { approveCommand } from "./approve.js";
import { tokenCommand } from "./token.js";
import { psCommand } from "./ps.js";
import { runCommand } from "./run.js";
import { stopCommand } from "./stop.js";
import { pruneCommand } from "./prune.js";
import { eventsCommand } from "./events.js";
import { imageCommand } from "./image.js";
import { replayCommand } from "./replay.js";
import { quarantineCommand } from "./quarantine.js";

/**
 * Every top-level verb of `hangar`, in the order `hangar --help` lists them.
 * To add one: write src/cli/commands/<verb>.ts exporting a Command (defineCommand for a
 * leaf, defineGroup for a verb with sub-verbs) and append it here.
 */
export const commands: readonly Command[] = [initCommand, policyCommand, baselineCommand, auditCommand, serveCommand, statusCommand, approveCommand, tokenCommand, runCommand, psCommand, stopCommand, eventsCommand, pruneCommand, imageCommand, replayCommand, quarantineCommand];
