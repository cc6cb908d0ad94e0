import { randomUUID } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Gateway } from "./gateway.js";
import { createSessionServer } from "./mcp-endpoint.js";
import { StdioServerLineTransport } from "./stdio-server-transport.js";

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

export async function serveStdio(gateway: Gateway, options: { identity: string; stdin: Readable; stdout: Writable; version: string; logger: Logger }): Promise<StdioEndpoint> {
  const session = randomUUID();
  // Lines are parsed once; the SDK's Protocol and Server validate each message (see stdio-server-transport.ts).
  const transport = new StdioServerLineTransport(options.stdin, options.stdout);
  const server = createSessionServer(gateway, () => ({ identity: options.identity, session }), { version: options.version, logger: options.logger });
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const previous = server.onclose;
  server.onclose = () => {
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
