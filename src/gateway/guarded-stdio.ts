import type { Readable, Writable } from "node:stream";
import type { HangarError } from "../core/errors.js";
import type { ArgumentFinding } from "../core/gateway/argument-scan.js";
import { LineFilterStream } from "./line-filter-stream.js";
import type { ToolRulesGuard } from "./tool-rules-guard.js";

/**
 * Pipes one MCP stdio session between a client and a server through a ToolRulesGuard:
 * client lines go to the server unless the guard answers them itself; server lines come
 * back with refused tools withheld. The client's end of input ends the server's input, as
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
  readonly onOversize?: (from: "client" | "server", bytes: number) => void;
}

/** Beyond the MCP SDK's own 10 MiB stdio buffer, with room for clients that read more. */
export const MAX_MCP_LINE_BYTES = 32 * 1024 * 1024;

export function pipeGuardedStdio(guard: ToolRulesGuard, streams: GuardedStdioStreams, hooks: GuardedStdioHooks = {}, maxLine = MAX_MCP_LINE_BYTES): () => void {
  const down = new LineFilterStream((line) => guard.fromServer(line), { maxLine, onOversize: (bytes) => hooks.onOversize?.("server", bytes) });
  const up = new LineFilterStream(
    (line) => {
      const outcome = guard.fromClient(line);
      if (outcome.toClient !== undefined) down.inject(outcome.toClient);
      if (outcome.refused !== undefined) hooks.onRefused?.(outcome.refused.tool, outcome.refused.error);
      if (outcome.flagged !== undefined) hooks.onFlagged?.(outcome.flagged.tool, outcome.flagged.findings);
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
