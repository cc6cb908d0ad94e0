import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadHangarConfigOrThrow } from "../../src/gateway/config/load-hangar-config.js";
import { openGateway, type OpenGateway } from "../../src/gateway/open-gateway.js";
import { silentLogger } from "../../src/log.js";
import { openTracing } from "../../src/telemetry/open-tracing.js";
import { otelSettings } from "../../src/telemetry/otel-settings.js";
import { NO_TRACING, type Tracing } from "../../src/telemetry/tracing.js";
import { egressEvent, EventInjectingLauncher } from "./support/event-launcher.js";
import { approve, connectClient, eventually, FAST_GATEWAY, project, textOf, type Project } from "./support/harness.js";
import { startOtlpCollector, type OtlpCollector, type ReceivedSpan } from "./support/otel-collector.js";

/**
 * OpenTelemetry traces of the gateway, exported over OTLP/HTTP (JSON) to a collector of ours
 * on loopback. The sidecar is the launcher's stand-in here (its events pushed by the test);
 * test/docker/otel-trace.test.ts shows the same tree from a real sandbox.
 */
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";

let p: Project;
let collector: OtlpCollector;
let tracing: Tracing;
let opened: OpenGateway | undefined;

beforeEach(async () => {
  p = project();
  collector = await startOtlpCollector();
  tracing = await openTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_SERVICE_NAME: "hangar-test" }, logger: silentLogger(), version: "0.0.0-test" });
});

afterEach(async () => {
  await opened?.close();
  opened = undefined;
  await tracing.shutdown();
  await collector.close();
  p[Symbol.dispose]();
});

async function openTraced(launcher: EventInjectingLauncher, rbac?: Record<string, unknown>): Promise<OpenGateway> {
  const file = await p.policy("mailer");
  p.writeConfig({ servers: ["policies/mailer.yaml"], identity: "dev", gateway: FAST_GATEWAY, rbac: rbac ?? { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } } });
  await approve(p.config, [file]);
  const { config } = await loadHangarConfigOrThrow(p.config);
  opened = await openGateway({ config, launcher, logger: silentLogger(), version: "0.0.0-test", secretSource: {}, statusFile: false, tracing });
  return opened;
}

const attr = (s: ReceivedSpan | undefined, key: string): unknown => s?.attributes[key];

describe("OpenTelemetry traces of the gateway", () => {
  it("exports one tools/call span, continuing the client's traceparent, with the allowed and the blocked egress under it", async () => {
    const launcher = new EventInjectingLauncher();
    const gw = await openTraced(launcher);
    await using alice = await connectClient(gw, "alice", "s-alice");
    // The server starts on first use; that call is its own trace.
    await alice.callTool({ name: "mailer__echo", arguments: { message: "warm up" } });
    await new Promise((r) => setTimeout(r, 1100));

    const slow = alice.callTool({ name: "mailer__slow", arguments: { ms: 300, note: "argument-value-never-exported" }, _meta: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } });
    await eventually(() => (gw.gateway.server("mailer")!.supervisor.snapshot().callsInFlight > 0 ? true : undefined));
    const allowed = egressEvent("mailer", { id: "conn-1", name: "api.allowed.test", sni: "api.allowed.test", port: 443, ip: "10.1.2.3", verdict: "allow", reasons: ["declared-host"], rule: "egress.allow[0]" });
    launcher.emit("mailer", allowed);
    launcher.emit("mailer", egressEvent("mailer", { id: "dns-1", type: "dns", protocol: "dns", path: "dns", name: "collector.evil.test", recordType: "A", verdict: "block", reasons: ["undeclared-host"] }));
    launcher.emit("mailer", { ...allowed, ts: new Date(Date.now() + 5).toISOString(), phase: "close", bytesUp: 1200, bytesDown: 80, durationMs: 5 });
    expect(textOf(await slow)).toBe("slept 300 ms");
    await eventually(() => (gw.status().servers[0]?.egress.block === 1 ? true : undefined));
    await tracing.flush();

    const spans = await collector.waitFor((all) => {
      const call = all.find((s) => s.name === "tools/call mailer__slow");
      const children = all.filter((s) => s.parentSpanId === call?.spanId);
      return call !== undefined && children.length === 2 ? { call, children } : undefined;
    });
    const { call, children } = spans;
    // The client's trace continues: same trace id, the client's span as parent.
    expect(call.traceId).toBe(TRACE_ID);
    expect(call.parentSpanId).toBe(CLIENT_SPAN);
    expect(call.kind).toBe(2); // SERVER
    expect(call.resource["service.name"]).toBe("hangar-test");
    expect(call.attributes).toMatchObject({
      "mcp.method.name": "tools/call",
      "gen_ai.tool.name": "mailer__slow",
      "hangar.server": "mailer",
      "hangar.tool": "slow",
      "hangar.identity": "alice",
      "mcp.session.id": "s-alice",
      "hangar.rbac.verdict": "allow",
      "hangar.tool_rule.verdict": "allow",
      "hangar.approval": "approved",
      "hangar.arguments.verdict": "clean",
      "hangar.rate_limit.verdict": "allow",
      "hangar.outcome": "ok",
      "hangar.reached": true,
    });
    expect(call.status.code).not.toBe(2);

    const egress = children.find((s) => s.name === "hangar.egress");
    const dns = children.find((s) => s.name === "hangar.dns");
    expect(egress?.traceId).toBe(TRACE_ID);
    expect(egress?.attributes).toMatchObject({
      "hangar.egress.verdict": "allow",
      "hangar.egress.reasons": ["declared-host"],
      "hangar.egress.rule": "egress.allow[0]",
      "server.address": "api.allowed.test",
      "server.port": 443,
      "network.peer.address": "10.1.2.3",
      "tls.client.server_name": "api.allowed.test",
      "hangar.egress.bytes_up": 1200,
      "hangar.egress.bytes_down": 80,
      "hangar.egress.close_seen": true,
    });
    // From the sidecar's decision to its close.
    expect(egress!.endMs - egress!.startMs).toBeGreaterThanOrEqual(4);
    expect(dns?.attributes).toMatchObject({ "hangar.egress.verdict": "block", "hangar.egress.reasons": ["undeclared-host"], "server.address": "collector.evil.test", "dns.question.type": "A" });
    expect(dns?.status).toMatchObject({ code: 2, message: "blocked: undeclared-host" });

    // Arguments never travel in a trace.
    expect(collector.bodies.join("\n")).not.toContain("argument-value-never-exported");
    expect(collector.bodies.join("\n")).not.toContain("warm up");
  });

  it("records the refusal on the span: RBAC deny, the outcome and the error code", async () => {
    const gw = await openTraced(new EventInjectingLauncher(), { roles: { echoer: { allow: ["mailer__echo"] } }, bindings: { bob: ["echoer"] } });
    await using bob = await connectClient(gw, "bob");
    await expect(bob.callTool({ name: "mailer__slow", arguments: { ms: 1 } })).rejects.toThrow(/not allowed|denied|permission/i);
    await tracing.flush();
    const span = await collector.waitFor((all) => all.find((s) => s.name === "tools/call mailer__slow"));
    expect(span.parentSpanId).toBeUndefined();
    expect(span.attributes).toMatchObject({ "hangar.identity": "bob", "hangar.rbac.verdict": "deny", "hangar.outcome": "denied", "hangar.reached": false });
    expect(span.status).toMatchObject({ code: 2, message: "HANGAR_GATEWAY_DENIED" });
  });

  it("traces the server's start, from STARTING to READY, and egress no call caused as a trace of its own", async () => {
    const launcher = new EventInjectingLauncher();
    const gw = await openTraced(launcher);
    await using alice = await connectClient(gw, "alice");
    await alice.callTool({ name: "mailer__echo", arguments: { message: "start" } });
    await new Promise((r) => setTimeout(r, 1100));
    launcher.emit("mailer", egressEvent("mailer", { id: "bg-1", verdict: "block", reasons: ["undeclared-host"], name: "telemetry.vendor.test", sni: "telemetry.vendor.test" }));
    await eventually(() => (gw.status().servers[0]?.egress.block === 1 ? true : undefined));
    await tracing.flush();
    const start = await collector.waitFor((all) => all.find((s) => s.name === "hangar.server.start"));
    expect(start.attributes).toMatchObject({ "hangar.server": "mailer", "hangar.lifecycle.from": "COLD", "hangar.lifecycle.to": "READY" });
    expect(start.events.map((e) => e.attributes["hangar.lifecycle.to"])).toEqual(["READY"]);
    const background = await collector.waitFor((all) => all.find((s) => s.attributes["server.address"] === "telemetry.vendor.test"));
    expect(background.parentSpanId).toBeUndefined();
    expect(background.attributes["hangar.egress.verdict"]).toBe("block");
    await gw.close();
    await tracing.flush();
    // Shutting the server down is a transition too.
    const dead = await collector.waitFor((all) => all.find((s) => s.name === "hangar.server.state" && attr(s, "hangar.lifecycle.to") === "DEAD"));
    expect(dead.attributes["hangar.server"]).toBe("mailer");
  });
});

describe("tracing settings (OTEL_* environment)", () => {
  it("is off, with the SDK never loaded, when nothing asks for traces", async () => {
    expect(otelSettings({})).toMatchObject({ enabled: false });
    expect(await openTracing({ env: {}, logger: silentLogger(), version: "x" })).toBe(NO_TRACING);
    expect(otelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" })).toMatchObject({ enabled: false });
    expect(otelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" })).toMatchObject({ enabled: false });
  });

  it("keeps the SDK out of every static import graph: only otel-tracing.ts imports it, and only dynamically", async () => {
    const root = fileURLToPath(new URL("../../src/", import.meta.url));
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith(".ts"));
    const importers: string[] = [];
    const staticOtelTracing: string[] = [];
    for (const file of files) {
      const text = await readFile(join(root, file), "utf8");
      if (/^import[^;]*from "@opentelemetry\//m.test(text)) importers.push(file);
      if (/^import[^;]*from "[^"]*otel-tracing\.js"/m.test(text)) staticOtelTracing.push(file);
    }
    expect(importers).toEqual([join("telemetry", "otel-tracing.ts")]);
    expect(staticOtelTracing).toEqual([]);
    expect(await readFile(join(root, "telemetry/open-tracing.ts"), "utf8")).toMatch(/await import\("\.\/otel-tracing\.js"\)/);
  });

  it("follows the spec's endpoint rules: the general endpoint gets /v1/traces, the traces endpoint is used as given", () => {
    expect(otelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" })).toEqual({ enabled: true, url: "http://127.0.0.1:4318/v1/traces", protocol: "http/protobuf", serviceName: "hangar" });
    expect(otelSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otel.example.test/custom", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_SERVICE_NAME: "gw" })).toEqual({
      enabled: true,
      url: "https://otel.example.test/custom",
      protocol: "http/json",
      serviceName: "gw",
    });
    expect(otelSettings({ OTEL_TRACES_EXPORTER: "otlp" })).toMatchObject({ enabled: true, url: "http://localhost:4318/v1/traces" });
  });

  it("says why it stays off for settings it cannot honour", () => {
    expect(otelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toMatchObject({ enabled: false, problem: expect.stringMatching(/OTEL_EXPORTER_OTLP_PROTOCOL="grpc": .*http\/protobuf or http\/json/) });
    expect(otelSettings({ OTEL_TRACES_EXPORTER: "zipkin" })).toMatchObject({ enabled: false, problem: expect.stringMatching(/OTEL_TRACES_EXPORTER="zipkin"/) });
    expect(otelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toMatchObject({ enabled: false, problem: expect.stringMatching(/OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": not an http\(s\) URL/) });
  });
});
