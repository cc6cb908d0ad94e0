import { HangarError } from "../core/errors.js";
import { describeArgumentViolations, type ArgumentRuleViolation } from "../core/gateway/argument-rules.js";
import { describeArgumentFindings, type ArgumentFinding } from "../core/gateway/argument-scan.js";
import { describeResultFindings, type ResultFinding } from "../core/gateway/result-scan.js";
import { describeChain, type FlowViolation } from "../core/gateway/flow-tracker.js";
import { exposedName } from "../core/gateway/namespacing.js";
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

/** A call that would complete a denied flow: names the flows and the session's earlier calls that led there. */
export function flowRefusal(server: string, tool: string, violations: readonly FlowViolation[]): HangarError {
  const [first] = violations;
  const names = violations.map((v) => v.flow);
  const labels = [...new Set(violations.flatMap((v) => v.labels))];
  const chain = [...new Map(violations.flatMap((v) => v.chain).map((c) => [c.callId, c])).values()].sort((a, b) => a.at - b.at);
  return new HangarError(
    "HANGAR_GATEWAY_FLOW_REFUSED",
    `tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is refused: calling it (${labels.join(", ")}) after ${describeChain(chain, exposedName)} in this session completes flow ${names.map((n) => JSON.stringify(n)).join(" and ")} (${(first?.mode ?? "enforcing").toUpperCase()})`,
    {
      data: {
        server,
        tool,
        permission: `flows.${first?.flow ?? ""}`,
        flows: names,
        labels,
        chain: chain.map((c) => ({ callId: c.callId, tool: exposedName(c.server, c.tool), labels: [...c.labels] })),
      },
    },
  );
}

/** Arguments outside the policy's tools.arguments rules: names the rules and paths, never the value. */
export function argumentRuleRefusal(server: string, tool: string, violations: readonly ArgumentRuleViolation[], mode: Mode): HangarError {
  const rules = [...new Set(violations.map((v) => v.rule))];
  return new HangarError(
    "HANGAR_GATEWAY_ARGUMENT_REFUSED",
    `tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is refused by its policy: argument ${describeArgumentViolations(violations)} (${mode.toUpperCase()})`,
    { data: { server, tool, permission: rules[0] ?? "tools.arguments", rules, violations: violations.map((v) => ({ rule: v.rule, path: v.path, reason: v.reason })) } },
  );
}

/** A result carrying injection cues under tools.results: strict: names the cues and paths, never the text. */
export function resultRefusal(server: string, tool: string, findings: readonly ResultFinding[]): HangarError {
  return new HangarError(
    "HANGAR_GATEWAY_RESULT_REFUSED",
    `the result of tool ${JSON.stringify(tool)} of server ${JSON.stringify(server)} is withheld: it carries ${findings.some((f) => f.code !== "RESULT_TOO_LARGE") ? "instructions aimed at the model" : "more text than the gateway can scan"} (${describeResultFindings(findings)}); the policy says tools.results: strict (ENFORCING)`,
    { data: { server, tool, permission: "tools.results", findings: findings.map((f) => ({ code: f.code, path: f.path, cue: f.cue })) } },
  );
}
