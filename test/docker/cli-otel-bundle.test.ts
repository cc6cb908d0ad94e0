import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, describe, expect, it } from "vitest";
import { approve, FAST_GATEWAY, project, textOf, type Project } from "../gateway/support/harness.js";
import { startOtlpCollector, type OtlpCollector } from "../gateway/support/otel-collector.js";

/**
 * The CLI as it ships (dist/cli/main.js, the esbuild bundle `npm run build` makes) exports
 * traces: `hangar serve` with OTEL_EXPORTER_OTLP_ENDPOINT set starts, answers a tool call,
 * and the call's span reaches a collector of ours on loopback, for both OTLP encodings. The
 * bundle once put each exporter package in a chunk whose only export was `default`, and serve
 * died at start with "OTLPTraceExporter is not a constructor"; the source tree never showed it.
 * The server runs --unsandboxed: the bundle's tracing is what is under test, not the sandbox.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "dist/cli/main.js");

let p: Project | undefined;
let collector: OtlpCollector | undefined;
afterEach(async () => {
  await collector?.close();
  p?.[Symbol.dispose]();
});

describe("the shipped CLI bundle exports traces", () => {
  it.each(["http/json", "http/protobuf"] as const)("hangar serve from dist, OTLP %s: the tool call's span reaches our collector", async (protocol) => {
    expect(existsSync(CLI), `${CLI}: run npm run build first`).toBe(true);
    collector = await startOtlpCollector();
    p = project();
    const policy = await p.policy("otelfx");
    const config = p.writeConfig({ servers: ["policies/otelfx.yaml"], identity: "otel-test", gateway: FAST_GATEWAY });
    await approve(config, [policy]);
    let stderr = "";
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "serve", "--config", config, "--stdio", "--unsandboxed"],
      env: {
        ...(process.env as Record<string, string>),
        HANGAR_LOG_LEVEL: "error",
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
      stderr: "pipe",
    });
    transport.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    const client = new Client({ name: "otel-bundle-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      const tools = await client.listTools();
      const echo = tools.tools.find((t) => t.name.endsWith("echo"));
      expect(echo, `tools: ${tools.tools.map((t) => t.name).join(", ")}; stderr: ${stderr}`).toBeDefined();
      expect(textOf(await client.callTool({ name: echo!.name, arguments: { message: "traced" } }))).toContain("traced");
      if (protocol === "http/json") {
        const span = await collector.waitFor((all) => all.find((s) => s.name === `tools/call ${echo!.name}`), 15_000);
        expect(span.attributes["mcp.tool.name"] ?? span.name).toBeDefined();
      } else {
        // Our collector reads JSON only: a protobuf export is seen as a request to /v1/traces, answered 415.
        await expect.poll(() => collector!.requests, { timeout: 15_000 }).toBeGreaterThan(0);
      }
      expect(stderr).not.toMatch(/not a constructor/);
    } finally {
      await client.close();
    }
  }, 60_000);
});
