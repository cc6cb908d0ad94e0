import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { ScenarioVerbDeps } from "../../../src/cli/commands/scenario-verb.js";
import type { EgressEvent } from "../../../src/core/events.js";
import type { LaunchServices } from "../../../src/replay/launch-services.js";
import { defaultRuntimeConfig } from "../../../src/runtime/runtime-config.js";
import type { SandboxStartOptions } from "../../../src/runtime/sandbox.js";
import type { StartedSandbox } from "../../../src/runtime/started-sandbox.js";
import { silentLogger } from "../../../src/log.js";

/**
 * The runtime boundary of the scenario verbs, in memory: the "sandbox" is an MCP server of
 * ours on a pair of streams, and each of its tools reports the egress a sidecar would have
 * seen (a DNS lookup, then a TLS connection with its close) through the run's onEvent, with
 * real timestamps. Everything above the sandbox (the driver, attribution, the recorder,
 * drift, the report writers, exit codes) is the real code.
 */
export interface FakeEgress {
  readonly name: string;
  readonly port: number;
}

export interface FakeTool {
  readonly name: string;
  readonly egress?: readonly FakeEgress[];
}

/** Quick settle: the fake's events arrive synchronously, there is nothing to wait for. */
export function fakeServices(tools: readonly FakeTool[]): ScenarioVerbDeps {
  const services: LaunchServices = {
    config: defaultRuntimeConfig(),
    logger: silentLogger(),
    sandboxes: { start: (options: SandboxStartOptions) => startFake(options, tools) },
    prepareImages: () => Promise.resolve({ id: "sha256:fake", ref: "fake:latest", source: "image" } as unknown as Awaited<ReturnType<LaunchServices["prepareImages"]>>),
  };
  return { openServices: () => Promise.resolve(services) };
}

async function startFake(options: SandboxStartOptions, tools: readonly FakeTool[]): Promise<StartedSandbox> {
  const server = options.policy.name;
  const toServer = new PassThrough();
  const fromServer = new PassThrough();
  const stderr = new PassThrough();
  const emit = (event: Omit<EgressEvent, "v" | "ts" | "id" | "server">): void => options.onEvent?.({ v: 1, ts: new Date().toISOString(), id: randomUUID(), server, ...event });
  const mcp = new Server({ name: `fake-${server}`, version: "1.0.0" }, { capabilities: { tools: {} } });
  mcp.setRequestHandler(ListToolsRequestSchema, () => ({ tools: tools.map((t) => ({ name: t.name, description: `The ${t.name} tool.`, inputSchema: { type: "object" as const, properties: {} } })) }));
  mcp.setRequestHandler(CallToolRequestSchema, (request) => {
    const tool = tools.find((t) => t.name === request.params.name);
    for (const e of tool?.egress ?? []) {
      const verdict = { verdict: "allow", reasons: [] } as const;
      emit({ type: "dns", phase: "decide", ...verdict, name: e.name, protocol: "dns", path: "dns", recordType: "A" });
      emit({ type: "egress", phase: "decide", ...verdict, name: e.name, port: e.port, protocol: "tls", path: "transparent", sni: e.name });
      emit({ type: "egress", phase: "close", ...verdict, name: e.name, port: e.port, protocol: "tls", path: "transparent", sni: e.name, bytesUp: 100, bytesDown: 50 });
    }
    return { content: [{ type: "text", text: `${request.params.name}: ok` }] };
  });
  await mcp.connect(new StdioServerTransport(toServer, fromServer));
  let stopped: Promise<void> | undefined;
  const sandbox = {
    server,
    run: "fake-run",
    stdin: toServer,
    stdout: fromServer,
    stderr,
    serverExit: new Promise<number>(() => undefined),
    stop: () =>
      (stopped ??= mcp.close().then(() => {
        stderr.end();
      })),
  };
  return sandbox as unknown as StartedSandbox;
}
