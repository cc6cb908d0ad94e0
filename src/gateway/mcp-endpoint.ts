import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type CallToolResult,
  type GetPromptResult,
  type Progress,
  type ReadResourceResult,
} from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "pino";
import type { IncomingTraceContext } from "../telemetry/tracing.js";
import type { Caller, Gateway, RequestOptions } from "./gateway.js";
import { toMcpError } from "./mcp-errors.js";

/**
 * The MCP face of the gateway: a low-level SDK Server for one session (one stdio client,
 * or one streamable HTTP session), bound to its caller. Every handler defers to the
 * Gateway; refusals become MCP errors (see mcp-errors.ts).
 */
export interface SessionServerOptions {
  readonly version: string;
  readonly logger: Logger;
}

const INSTRUCTIONS =
  "Hangar gateway: tools, prompts and resources of several MCP servers, named <server>__<name> (resources: hangar://<server>/<uri>). " +
  "Calls are checked against RBAC, each server's policy and its approved tool manifest, and audited.";

export function createSessionServer(gateway: Gateway, caller: () => Caller, options: SessionServerOptions): Server {
  const server = new Server(
    { name: "hangar", version: options.version },
    { capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true } }, instructions: INSTRUCTIONS },
  );

  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      throw toMcpError(err);
    }
  };
  const requestOptions = (extra: { signal: AbortSignal; _meta?: { progressToken?: string | number }; sendNotification: (n: { method: "notifications/progress"; params: Progress & { progressToken: string | number } }) => Promise<void> }): RequestOptions => {
    const token = extra._meta?.progressToken;
    return {
      signal: extra.signal,
      ...(token !== undefined ? { onprogress: (p: Progress) => void extra.sendNotification({ method: "notifications/progress", params: { ...p, progressToken: token } }).catch(() => undefined) } : {}),
    };
  };

  server.setRequestHandler(ListToolsRequestSchema, () => guard(async () => ({ tools: await gateway.listTools(caller()) })));
  server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    const trace = traceContextOf(request.params._meta);
    const options = requestOptions(extra);
    return guard(async () => (await gateway.callTool(caller(), request.params.name, request.params.arguments, trace === undefined ? options : { ...options, trace })) as CallToolResult);
  });
  server.setRequestHandler(ListPromptsRequestSchema, () => guard(async () => ({ prompts: await gateway.listPrompts(caller()) })));
  server.setRequestHandler(GetPromptRequestSchema, (request, extra) =>
    guard(async () => (await gateway.getPrompt(caller(), request.params.name, request.params.arguments, requestOptions(extra))) as GetPromptResult),
  );
  server.setRequestHandler(ListResourcesRequestSchema, () => guard(async () => ({ resources: await gateway.listResources(caller()) })));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => guard(async () => ({ resourceTemplates: await gateway.listResourceTemplates(caller()) })));
  server.setRequestHandler(ReadResourceRequestSchema, (request, extra) => guard(async () => (await gateway.readResource(caller(), request.params.uri, requestOptions(extra))) as ReadResourceResult));

  const unsubscribe = gateway.onListChanged(() => {
    if (server.transport === undefined) return;
    for (const send of [() => server.sendToolListChanged(), () => server.sendPromptListChanged(), () => server.sendResourceListChanged()]) {
      send().catch((err: unknown) => options.logger.debug({ err }, "list_changed not delivered"));
    }
  });
  const previous = server.onclose;
  server.onclose = () => {
    unsubscribe();
    gateway.sessionEnded(caller());
    previous?.();
  };
  return server;
}

/** W3C trace context from a request's `_meta` (`traceparent`, `tracestate`), when the client sent one. */
export function traceContextOf(meta: Readonly<Record<string, unknown>> | undefined): IncomingTraceContext | undefined {
  const traceparent = meta?.["traceparent"];
  if (typeof traceparent !== "string" || traceparent.length > 256) return undefined;
  const tracestate = meta?.["tracestate"];
  return { traceparent, ...(typeof tracestate === "string" && tracestate.length <= 512 ? { tracestate } : {}) };
}
