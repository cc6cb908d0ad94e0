import { defineGroup } from "../define-command.js";
import { policyExplainCommand } from "./policy-explain.js";
import { policyLintCommand } from "./policy-lint.js";
import { policySchemaCommand } from "./policy-schema.js";

export const policyCommand = defineGroup({
  name: "policy",
  summary: "Check, explain and describe policy files",
  usage: "hangar policy <command> [options]",
  description: "A policy file declares what one MCP server may reach: its egress, DNS, tools, secrets and mounts.",
  commands: [policyLintCommand, policyExplainCommand, policySchemaCommand],
});
