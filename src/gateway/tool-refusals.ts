import { HangarError } from "../core/errors.js";
import { describeArgumentFindings, type ArgumentFinding } from "../core/gateway/argument-scan.js";
import type { ToolRuleDecision } from "../core/gateway/tool-rules.js";
import type { Mode } from "../core/policy/policy-schema.js";

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

/** Arguments carrying a credential: names the detectors and paths, never the value. */
export function argumentRefusal(server: string, tool: string, findings: readonly ArgumentFinding[], mode: Mode): HangarError {
  const detectors = [...new Set(findings.map((f) => f.detector))];
  return new HangarError(
    "HANGAR_GATEWAY_ARGUMENT_REFUSED",
    `tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is refused: its arguments carry ${detectors.includes("too-large-to-scan") && detectors.length === 1 ? "more than the gateway can scan" : "a credential"} (${describeArgumentFindings(findings)}); credentials never travel in tool arguments (${mode.toUpperCase()})`,
    { data: { server, tool, permission: "arguments", detectors, findings: findings.map((f) => ({ detector: f.detector, path: f.path, encoding: f.encoding })) } },
  );
}
