import { HangarError } from "../core/errors.js";
import type { ToolRuleDecision } from "../core/gateway/tool-rules.js";

/**
 * The refusals a server policy's `tools` section produces, shared by `hangar serve` (the
 * gateway) and `hangar run` (the guarded stdio bridge), so a client reads the same code,
 * message and data from both.
 */
export function toolRuleRefusal(server: string, tool: string, decision: Extract<ToolRuleDecision, { allowed: false }>): HangarError {
  return new HangarError("HANGAR_GATEWAY_DENIED", decision.message, { data: { permission: `${server}:${decision.rule}`, server, tool } });
}

export function rateLimitRefusal(server: string, perMinute: number, retryAfterMs: number): HangarError {
  return new HangarError("HANGAR_GATEWAY_RATE_LIMITED", `server ${JSON.stringify(server)} allows ${perMinute} tool calls per minute (tools.rateLimit.perMinute); retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
    data: { server, retryAfterMs, permission: "tools.rateLimit" },
  });
}
