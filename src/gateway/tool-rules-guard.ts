import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { HangarError } from "../core/errors.js";
import { scanArguments, type ArgumentFinding } from "../core/gateway/argument-scan.js";
import { RateLimiter } from "../core/gateway/rate-limiter.js";
import { decideToolRule } from "../core/gateway/tool-rules.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import { toMcpError } from "./mcp-errors.js";
import { argumentRefusal, rateLimitRefusal, toolRuleRefusal } from "./tool-refusals.js";

/**
 * A server policy's `tools` section (allow, deny, rateLimit) applied to one raw MCP stdio
 * session, one JSON-RPC line at a time: what `hangar run` puts between the client and the
 * sandboxed server. The same rules and refusals as `hangar serve`: a refused tool is left out
 * of every tools/list result, and a tools/call to it (or past the rate limit) is answered
 * here with the gateway's MCP error and never reaches the server. Pure apart from the clock.
 */
export interface ToolRulesGuardOptions {
  readonly server: string;
  readonly tools: Policy["tools"];
  readonly now: () => number;
  /**
   * Scan each call's arguments for credentials, as `hangar serve` does: refused when
   * ENFORCING, passed on and reported as `flagged` when OBSERVING. Absent: no scan.
   */
  readonly arguments?: { readonly mode: Mode; readonly watched?: readonly string[] };
}

/** What to do with one line from the client. */
export interface ClientLineOutcome {
  /** The line to pass on to the server, if any. */
  readonly toServer?: string;
  /** A line to answer the client with instead. */
  readonly toClient?: string;
  /** Why a tools/call was refused. */
  readonly refused?: { readonly tool: string; readonly error: HangarError };
  /** A call passed on although its arguments carry a credential (OBSERVING: would-block). */
  readonly flagged?: { readonly tool: string; readonly findings: readonly ArgumentFinding[] };
}

type JsonObject = Record<string, unknown>;

export class ToolRulesGuard {
  private readonly limiter: RateLimiter | undefined;

  constructor(private readonly options: ToolRulesGuardOptions) {
    const perMinute = options.tools.rateLimit?.perMinute;
    this.limiter = perMinute === undefined ? undefined : new RateLimiter(perMinute, options.now());
  }

  /** Whether the policy lets clients see and call `tool` (the server's own name for it). */
  offers(tool: string): boolean {
    return decideToolRule(this.options.server, this.options.tools, tool).allowed;
  }

  fromClient(line: string): ClientLineOutcome {
    if (line.trim() === "") return { toServer: line };
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return { toClient: errorLine(null, ErrorCode.ParseError, "Parse error: hangar run forwards only JSON-RPC messages, one per line") };
    }
    // MCP dropped JSON-RPC batches (2025-06-18); checking each element is not worth the risk.
    if (Array.isArray(message)) return { toClient: errorLine(null, ErrorCode.InvalidRequest, "hangar run does not forward JSON-RPC batches") };
    if (!isObject(message) || message["method"] !== "tools/call") return { toServer: line };

    const id = message["id"];
    const params = message["params"];
    const tool = isObject(params) ? params["name"] : undefined;
    // A notification has no id to answer: a refused one is dropped.
    const answer = (reply: string): ClientLineOutcome => (id === undefined ? {} : { toClient: reply });
    if (typeof tool !== "string") return answer(errorLine(id, ErrorCode.InvalidParams, "tools/call needs params.name, the tool's name"));
    const scan = this.options.arguments;
    const findings = scan === undefined ? [] : scanArguments(isObject(params) ? params["arguments"] : undefined, scan.watched !== undefined ? { watched: scan.watched } : {}).findings;
    const refusal = this.admit(tool, findings);
    if (refusal === undefined) return findings.length > 0 ? { toServer: line, flagged: { tool, findings } } : { toServer: line };
    const mcp = toMcpError(refusal);
    return { ...answer(JSON.stringify({ jsonrpc: "2.0", id, error: { code: mcp.code, message: mcp.message, data: mcp.data } })), refused: { tool, error: refusal } };
  }

  /** The line to pass on to the client: tools/list results lose the tools the policy refuses. */
  fromServer(line: string): string {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      // Not a message: the client rejects it as well, and there is nothing in it to withhold.
      return line;
    }
    if (Array.isArray(message)) return message.some(listsTools) ? JSON.stringify(message.map((m) => this.withhold(m))) : line;
    // Rewritten whenever it lists tools, so the client reads exactly what was checked.
    return listsTools(message) ? JSON.stringify(this.withhold(message)) : line;
  }

  /** The gateway's order: the tool rules, the arguments, then the rate limit (refused calls cost nothing). */
  private admit(tool: string, findings: readonly ArgumentFinding[]): HangarError | undefined {
    const { server } = this.options;
    const rule = decideToolRule(server, this.options.tools, tool);
    if (!rule.allowed) return toolRuleRefusal(server, tool, rule);
    if (findings.length > 0 && this.options.arguments?.mode === "enforcing") return argumentRefusal(server, tool, findings, "enforcing");
    const rate = this.limiter?.tryTake(this.options.now());
    if (rate === undefined || rate.allowed || this.limiter === undefined) return undefined;
    return rateLimitRefusal(server, this.limiter.perMinute, rate.retryAfterMs);
  }

  private withhold(message: unknown): unknown {
    if (!listsTools(message)) return message;
    const result = message["result"] as JsonObject & { tools: unknown[] };
    // A tool without a name cannot be checked, so it is not offered either.
    const tools = result.tools.filter((t) => isObject(t) && typeof t["name"] === "string" && this.offers(t["name"]));
    return { ...message, result: { ...result, tools } };
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Any result carrying a tools array, whatever id it answers (clients match ids loosely). */
function listsTools(message: unknown): message is JsonObject {
  return isObject(message) && isObject(message["result"]) && Array.isArray(message["result"]["tools"]);
}

function errorLine(id: unknown, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id: id ?? null, error: { code, message } });
}
