import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { statusAt } from "../../gateway/fleet-status.js";
import { formatFleetStatus } from "../../gateway/format-status.js";
import { readStatusFile } from "../../gateway/status-file.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

export interface StatusCommandDeps {
  /** The clock uptimes are shown against. */
  readonly now?: () => number;
}

export function createStatusCommand(deps: StatusCommandDeps = {}): Command {
  return defineCommand({
    name: "status",
    summary: "Show the fleet: state, uptime, calls, last error and egress verdicts per server",
    usage: "hangar status [--config <file>] [--json]",
    description:
      "Reads the status file the serving gateway keeps (gateway.status in hangar.yaml, default\n" +
      ".hangar/status.json) and says whether that gateway still runs. EGRESS counts the\n" +
      "sidecar's decisions per attempt: allowed / flagged / blocked / would-block.",
    options: {
      config: CONFIG_OPTION,
      json: { type: "boolean", description: "Print { running, status } as JSON." },
    },
    positionals: { max: 0 },
    details: "Exit status: 0 when the status was read (running or not), 1 when there is none, 2 on a usage error.",
    async run({ values }, io) {
      const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
      const read = await readStatusFile(paths.status);
      if (!read.ok) {
        if (values.json === true) io.out(`${JSON.stringify({ running: false, error: read.message }, null, 2)}\n`);
        else io.err(`hangar: ${read.message}\n`);
        return EXIT_FINDING;
      }
      const status = statusAt(read.status, read.running, (deps.now ?? Date.now)());
      if (values.json === true) io.out(`${JSON.stringify({ running: read.running, status }, null, 2)}\n`);
      else io.out(formatFleetStatus(status, read.running));
      return EXIT_OK;
    },
  });
}

export const statusCommand = createStatusCommand();
