import { firstMatch } from "./glob.js";

/**
 * A server policy's own tool rules (`tools.allow`, `tools.deny`), over the server's own
 * (upstream) tool names. No allow list means every tool; deny wins over allow.
 */
export interface ToolRules {
  readonly allow?: readonly string[];
  readonly deny: readonly string[];
}

export type ToolRuleDecision = { readonly allowed: true } | { readonly allowed: false; readonly rule: string; readonly message: string };

export function decideToolRule(server: string, rules: ToolRules, tool: string): ToolRuleDecision {
  const deny = firstMatch(rules.deny, tool);
  if (deny !== undefined) {
    return { allowed: false, rule: `tools.deny ${JSON.stringify(deny)}`, message: `tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is refused by its policy (tools.deny ${JSON.stringify(deny)})` };
  }
  if (rules.allow !== undefined && firstMatch(rules.allow, tool) === undefined) {
    const listed = rules.allow.length === 0 ? "an empty tools.allow" : `tools.allow [${rules.allow.join(", ")}]`;
    return { allowed: false, rule: "tools.allow", message: `tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is not in its policy's ${listed}` };
  }
  return { allowed: true };
}
