import type { Readable, Writable } from "node:stream";
import type { HangarError } from "../core/errors.js";
import type { ArgumentRuleViolation } from "../core/gateway/argument-rules.js";
import type { ArgumentFinding } from "../core/gateway/argument-scan.js";
import { LineFilterStream } from "./line-filter-stream.js";
import type { ScreenedResult, ToolRulesGuard } from "./tool-rules-guard.js";

/**
 * Pipes one MCP stdio session between a client and a server through a ToolRulesGuard:
 * client lines go to the server unless the guard answers them itself; server lines come
 * back with refused tools withheld, and a result tools.results withholds replaced by the error. The client's end of input ends the server's input, as
 * a plain pipe would. Returns what undoes the piping.
 */
export interface GuardedStdioStreams {
  /** What the client writes (the bridge's stdin). */
  readonly fromClient: Readable;
  /** What the client reads (the bridge's stdout); never ended here. */
  readonly toClient: Writable;
  readonly toServer: Writable;
  readonly fromServer: Readable;
}

export interface GuardedStdioHooks {
  readonly onRefused?: (tool: string, error: HangarError) => void;
  /** A call passed on although its arguments carry a credential (OBSERVING). */
  readonly onFlagged?: (tool: string, findings: readonly ArgumentFinding[]) => void;
  /** A call passed on although its arguments break tools.arguments rules (OBSERVING). */
  readonly onRuled?: (tool: string, violations: readonly ArgumentRuleViolation[]) => void;
  /** A tool result carrying injection cues: passed on ("flag", "would-block") or withheld ("block"). */
  readonly onResult?: (result: ScreenedResult) => void;
  readonly onOversize?: (from: "client" | "server", bytes: number) => void;
}

/** Beyond the MCP SDK's own 10 MiB stdio buffer, with room for clients that read more. */
export const MAX_MCP_LINE_BYTES = 32 * 1024 * 1024;

export function pipeGuardedStdio(guard: ToolRulesGuard, streams: GuardedStdioStreams, hooks: GuardedStdioHooks = {}, maxLine = MAX_MCP_LINE_BYTES): () => void {
  const down = new LineFilterStream(
    (line) => {
      const outcome = guard.screenServer(line);
      for (const result of outcome.results ?? []) hooks.onResult?.(result);
      return outcome.toClient;
    },
    { maxLine, onOversize: (bytes) => hooks.onOversize?.("server", bytes) },
  );
  const up = new LineFilterStream(
    (line) => {
      const outcome = guard.fromClient(line);
      if (outcome.toClient !== undefined) down.inject(outcome.toClient);
      if (outcome.refused !== undefined) hooks.onRefused?.(outcome.refused.tool, outcome.refused.error);
      if (outcome.flagged !== undefined) hooks.onFlagged?.(outcome.flagged.tool, outcome.flagged.findings);
      if (outcome.ruled !== undefined) hooks.onRuled?.(outcome.ruled.tool, outcome.ruled.violations);
      return outcome.toServer;
    },
    { maxLine, onOversize: (bytes) => hooks.onOversize?.("client", bytes) },
  );
  streams.fromServer.pipe(down).pipe(streams.toClient, { end: false });
  streams.fromClient.pipe(up).pipe(streams.toServer);
  return () => {
    streams.fromClient.unpipe(up);
    up.unpipe(streams.toServer);
    streams.fromServer.unpipe(down);
    down.unpipe(streams.toClient);
  };
}
