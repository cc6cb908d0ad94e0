import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { HangarError } from "../core/errors.js";
import { checkArgumentRules, type ArgumentRuleViolation } from "../core/gateway/argument-rules.js";
import { scanArguments, type ArgumentFinding } from "../core/gateway/argument-scan.js";
import { decideResult, type ResultFinding, type ResultVerdict } from "../core/gateway/result-scan.js";
import { RateLimiter } from "../core/gateway/rate-limiter.js";
import { decideToolRule } from "../core/gateway/tool-rules.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import { toMcpError } from "./mcp-errors.js";
import { argumentRefusal, argumentRuleRefusal, rateLimitRefusal, resultRefusal, toolRuleRefusal } from "./tool-refusals.js";

/**
 * A server policy's `tools` section (allow, deny, arguments, results, rateLimit) applied to one
 * raw MCP stdio session, one JSON-RPC line at a time: what `hangar run` puts between the client
 * and the sandboxed server. The same rules, decisions and refusals as `hangar serve`: a refused
 * tool is left out of every tools/list result; a tools/call to it, with arguments outside the
 * policy, or past the rate limit is answered here with the gateway's MCP error and never reaches
 * the server; a tool result carrying injection cues is reported, and under `tools.results: strict`
 * (ENFORCING) replaced by the gateway's error, so the client never reads it. Pure apart from the clock.
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
  /**
   * The run's mode for `tools.arguments` and `tools.results: strict`: ENFORCING refuses,
   * OBSERVING passes on and reports. Default: the credential scan's mode, else ENFORCING.
   */
  readonly mode?: Mode;
  /** For `tools.arguments` rules with `host: declared` (declaredHostCheck of the policy); default: none is. */
  readonly declaredHost?: (host: string) => boolean;
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
  /** A call passed on although its arguments break tools.arguments rules (OBSERVING: would-block). */
  readonly ruled?: { readonly tool: string; readonly violations: readonly ArgumentRuleViolation[] };
}

/** What to do with one line from the server. */
export interface ServerLineOutcome {
  /** The line to pass on to the client: the server's, rewritten, or the gateway's error instead of a withheld result. */
  readonly toClient: string;
  /** Tool results that carry injection cues, and what tools.results made of them ("block": withheld). */
  readonly results?: readonly ScreenedResult[];
}

export interface ScreenedResult {
  readonly tool: string;
  readonly verdict: ResultVerdict;
  readonly findings: readonly ResultFinding[];
}

type JsonObject = Record<string, unknown>;

/** Calls awaiting their result, remembered only to name the tool; the oldest go first past this. */
const MAX_PENDING_CALLS = 1024;

export class ToolRulesGuard {
  private readonly limiter: RateLimiter | undefined;
  private readonly mode: Mode;
  /** Tool names of the calls passed on, by request id (see idKey). */
  private readonly pending = new Map<string, string>();

  constructor(private readonly options: ToolRulesGuardOptions) {
    const perMinute = options.tools.rateLimit?.perMinute;
    this.limiter = perMinute === undefined ? undefined : new RateLimiter(perMinute, options.now());
    this.mode = options.mode ?? options.arguments?.mode ?? "enforcing";
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
    const rules = this.options.tools.arguments;
    const violations = rules === undefined || rules.length === 0 ? [] : checkArgumentRules(rules, tool, (isObject(params) ? params["arguments"] : undefined) ?? {}, { declaredHost: this.options.declaredHost ?? (() => false) });
    const refusal = this.admit(tool, findings, violations);
    if (refusal === undefined) {
      if (id !== undefined) this.remember(id, tool);
      return { toServer: line, ...(findings.length > 0 ? { flagged: { tool, findings } } : {}), ...(violations.length > 0 ? { ruled: { tool, violations } } : {}) };
    }
    return { ...answer(errorReply(id, refusal)), refused: { tool, error: refusal } };
  }

  /** The line to pass on to the client: tools/list results lose the tools the policy refuses. */
  fromServer(line: string): string {
    return this.screenServer(line).toClient;
  }

  /**
   * One line from the server, screened: tools/list results lose the tools the policy refuses;
   * tool results are scanned under tools.results, and one decided "block" is replaced by the
   * gateway's error. Every result with content is scanned, whatever its id: a server cannot
   * slip one past by answering an id the guard did not see.
   */
  screenServer(line: string): ServerLineOutcome {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      // Not a message: the client rejects it as well, and there is nothing in it to withhold.
      return { toClient: line };
    }
    const results: ScreenedResult[] = [];
    if (Array.isArray(message)) {
      const screened = message.map((m) => this.screenMessage(m, results));
      // Rewritten whenever anything changed, so the client reads exactly what was checked.
      return { toClient: screened.some((m, i) => m !== message[i]) ? JSON.stringify(screened) : line, ...(results.length > 0 ? { results } : {}) };
    }
    const screened = this.screenMessage(message, results);
    return { toClient: screened === message ? line : JSON.stringify(screened), ...(results.length > 0 ? { results } : {}) };
  }

  /** The message as the client may read it: the same object when nothing changes. */
  private screenMessage(message: unknown, results: ScreenedResult[]): unknown {
    if (!isObject(message) || !("result" in message || "error" in message)) return message;
    const key = idKey(message["id"]);
    const tool = this.pending.get(key);
    this.pending.delete(key);
    if (listsTools(message)) return this.withhold(message);
    const result = message["result"];
    if (!isObject(result) || (!Array.isArray(result["content"]) && result["structuredContent"] === undefined)) return message;
    const name = tool ?? "(unknown tool)";
    const decided = decideResult(result, this.options.tools.results, this.mode);
    if (decided === undefined) return message;
    results.push({ tool: name, ...decided });
    if (decided.verdict !== "block") return message;
    return JSON.parse(errorReply(message["id"], resultRefusal(this.options.server, name, decided.findings))) as unknown;
  }

  private remember(id: unknown, tool: string): void {
    const key = idKey(id);
    this.pending.delete(key);
    this.pending.set(key, tool);
    if (this.pending.size > MAX_PENDING_CALLS) this.pending.delete(this.pending.keys().next().value as string);
  }

  /** The gateway's order: the tool rules, the arguments (credentials, then rules), then the rate limit (refused calls cost nothing). */
  private admit(tool: string, findings: readonly ArgumentFinding[], violations: readonly ArgumentRuleViolation[]): HangarError | undefined {
    const { server } = this.options;
    const rule = decideToolRule(server, this.options.tools, tool);
    if (!rule.allowed) return toolRuleRefusal(server, tool, rule);
    if (findings.length > 0 && this.options.arguments?.mode === "enforcing") return argumentRefusal(server, tool, findings, "enforcing");
    if (violations.length > 0 && this.mode === "enforcing") return argumentRuleRefusal(server, tool, violations, "enforcing");
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

/** The gateway's MCP error for `error`, answering `id`. */
function errorReply(id: unknown, error: HangarError): string {
  const mcp = toMcpError(error);
  return JSON.stringify({ jsonrpc: "2.0", id, error: { code: mcp.code, message: mcp.message, data: mcp.data } });
}

/** Clients match response ids loosely (the SDK reads `Number(id)`): 1, "1" and " 1" are one call. */
function idKey(id: unknown): string {
  if (typeof id === "number") return String(id);
  if (typeof id === "string" && id.trim() !== "" && Number.isFinite(Number(id))) return String(Number(id));
  return JSON.stringify(id) ?? "undefined";
}

function errorLine(id: unknown, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id: id ?? null, error: { code, message } });
}
