import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { HangarError, isHangarError } from "../core/errors.js";

/**
 * Sorting what an upstream request can fail with. A server that answered with an error
 * is alive (an application error); a closed connection, a dead pipe or a timeout is a
 * transport failure, which the breaker counts.
 */
export type UpstreamFailure = "application" | "transport" | "timeout" | "cancelled" | "gateway";

export function classifyUpstreamError(err: unknown, signal?: AbortSignal): UpstreamFailure {
  if (signal?.aborted === true) return "cancelled";
  if (isHangarError(err)) return err.code === "HANGAR_GATEWAY_TIMEOUT" ? "timeout" : err.code === "HANGAR_GATEWAY_UPSTREAM" ? "transport" : "gateway";
  if (err instanceof McpError) {
    if (err.code === ErrorCode.RequestTimeout) return "timeout";
    if (err.code === ErrorCode.ConnectionClosed) return "transport";
    return "application";
  }
  return "transport";
}

/** The HangarError a transport failure or timeout becomes; other errors are returned as they are. */
export function upstreamError(server: string, err: unknown, kind: UpstreamFailure, timeoutMs: number): unknown {
  if (kind === "timeout") return new HangarError("HANGAR_GATEWAY_TIMEOUT", `server ${JSON.stringify(server)} did not answer within ${timeoutMs} ms`, { cause: err, data: { server, timeoutMs } });
  if (kind === "transport") return new HangarError("HANGAR_GATEWAY_UPSTREAM", `server ${JSON.stringify(server)} went away during the request: ${(err as Error).message ?? String(err)}`, { cause: err, data: { server } });
  return err;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
