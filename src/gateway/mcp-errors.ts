import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { isHangarError, type HangarErrorCode } from "../core/errors.js";

/**
 * How gateway refusals reach MCP clients: a JSON-RPC error with a stable numeric code (in
 * the range JSON-RPC leaves to servers) and `data.code` carrying the Hangar code, plus the
 * structured data (the missing permission, retryAfterMs, ...). Errors the upstream server
 * answered with pass through unchanged.
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
  HANGAR_GATEWAY_TIMEOUT: ErrorCode.RequestTimeout,
  HANGAR_GATEWAY_UNKNOWN: ErrorCode.InvalidParams,
};

export function toMcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  if (isHangarError(err)) {
    return new McpError(GATEWAY_RPC_CODES[err.code] ?? ErrorCode.InternalError, err.message, { code: err.code, ...err.data });
  }
  return new McpError(ErrorCode.InternalError, err instanceof Error ? err.message : String(err));
}
