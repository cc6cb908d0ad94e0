import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { isHangarError, type HangarErrorCode } from "../core/errors.js";

/**
 * How gateway refusals reach MCP clients: a JSON-RPC error with a stable numeric code (in
 * the range JSON-RPC leaves to servers) and `data.code` carrying the Hangar code, plus the
 * structured data (the missing permission, retryAfterMs, ...). Errors the upstream server
 * answered with pass through with their code, message and data.
 */
export const GATEWAY_RPC_CODES: Readonly<Partial<Record<HangarErrorCode, number>>> = {
  HANGAR_GATEWAY_DENIED: -32010,
  HANGAR_GATEWAY_RATE_LIMITED: -32011,
  HANGAR_GATEWAY_WITHHELD: -32012,
  HANGAR_GATEWAY_NOT_APPROVED: -32013,
  HANGAR_GATEWAY_UNAVAILABLE: -32014,
  HANGAR_GATEWAY_LAUNCH_FAILED: -32014,
  HANGAR_CLOSED: -32014,
  HANGAR_GATEWAY_UPSTREAM: -32015,
  HANGAR_GATEWAY_ARGUMENT_REFUSED: -32016,
  HANGAR_GATEWAY_FLOW_REFUSED: -32017,
  HANGAR_GATEWAY_RESULT_REFUSED: -32018,
  HANGAR_GATEWAY_TIMEOUT: ErrorCode.RequestTimeout,
  HANGAR_GATEWAY_UNKNOWN: ErrorCode.InvalidParams,
};

/**
 * The SDK's McpError puts "MCP error <code>: " before its message, and the SDK sends that
 * message as it is: the client, whose McpError adds the prefix again, would print it twice
 * (`MCP error -32010: MCP error -32010: ...`). An upstream that threw an McpError has added
 * one more by the time it reaches us. On the wire goes the bare message; the client adds
 * the prefix once.
 */
class WireMcpError extends McpError {
  constructor(code: number, message: string, data?: unknown) {
    super(code, message, data);
    this.message = message;
  }
}

/** `message` without the "MCP error <code>: " prefixes the SDK added, one per hop. */
export function bareMcpMessage(code: number, message: string): string {
  const prefix = `MCP error ${code}: `;
  let bare = message;
  while (bare.startsWith(prefix)) bare = bare.slice(prefix.length);
  return bare;
}

export function toMcpError(err: unknown): McpError {
  if (err instanceof McpError) return new WireMcpError(err.code, bareMcpMessage(err.code, err.message), err.data);
  if (isHangarError(err)) {
    return new WireMcpError(GATEWAY_RPC_CODES[err.code] ?? ErrorCode.InternalError, err.message, { code: err.code, ...err.data });
  }
  return new WireMcpError(ErrorCode.InternalError, err instanceof Error ? err.message : String(err));
}
