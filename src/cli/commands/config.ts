import { defineGroup } from "../define-command.js";
import { configCheckCommand } from "./config-check.js";
import { configSchemaCommand } from "./config-schema.js";

export const configCommand = defineGroup({
  name: "config",
  summary: "Check the Hangar configuration (hangar.yaml) and print its JSON Schema",
  usage: "hangar config <command> [options]",
  description: "hangar.yaml names the servers (their policy files), the audit log, RBAC and the gateway's settings.",
  commands: [configCheckCommand, configSchemaCommand],
});
