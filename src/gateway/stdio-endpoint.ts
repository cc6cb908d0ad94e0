import { randomUUID } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Gateway } from "./gateway.js";
import { createSessionServer } from "./mcp-endpoint.js";
import { StdioServerLineTransport } from "./stdio-server-transport.js";
import { StdioToolCalls } from "./stdio-tool-calls.js";

/**
 * The gateway over stdio: one session, run as the configured identity (hangar.yaml's
 * `identity`): whoever can start the process is that identity. Resolves when the client
 * closes its end (stdin ends) or `stop()` is called.
 */
export interface StdioEndpoint {
  readonly session: string;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export interface StdioEndpointOptions {
  readonly identity: string;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly version: string;
  readonly logger: Logger;
  /** tools/call answered without the SDK Server (stdio-tool-calls.ts); default true. False: every message goes through the SDK. */
  readonly directToolCalls?: boolean;
}

export async function serveStdio(gateway: Gateway, options: StdioEndpointOptions): Promise<StdioEndpoint> {
  const session = randomUUID();
  // Lines are parsed once; the SDK's Protocol and Server validate each message (see stdio-server-transport.ts),
  // except tools/call requests of the plain shape, which StdioToolCalls checks and answers itself.
  const transport = new StdioServerLineTransport(options.stdin, options.stdout);
  const caller = (): { identity: string; session: string } => ({ identity: options.identity, session });
  const server = createSessionServer(gateway, caller, { version: options.version, logger: options.logger });
  const toolCalls = options.directToolCalls === false ? undefined : new StdioToolCalls(gateway, caller, (line) => transport.writeLine(line), options.logger);
  if (toolCalls !== undefined) transport.intercept = (message) => toolCalls.take(message);
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const previous = server.onclose;
  server.onclose = () => {
    toolCalls?.close();
    previous?.();
    finish();
  };
  const onEnd = (): void => void server.close();
  options.stdin.once("end", onEnd);
  options.stdin.once("close", onEnd);
  await server.connect(transport);
  options.logger.info({ identity: options.identity, session }, "serving MCP on stdio");
  return {
    session,
    done,
    stop: async () => {
      options.stdin.off("end", onEnd);
      options.stdin.off("close", onEnd);
      await server.close();
    },
  };
}
