import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { silentLogger } from "../../src/log.js";
import type { LaunchServices } from "../../src/replay/launch-services.js";
import { runScenario } from "../../src/replay/scenario-session.js";
import { openTracing } from "../../src/telemetry/open-tracing.js";
import type { Tracing } from "../../src/telemetry/tracing.js";
import { startOtlpCollector, type OtlpCollector } from "../gateway/support/otel-collector.js";
import { fakeServices } from "./support/fake-sandbox.js";

/**
 * Replay, quarantine and baseline record share runScenario: one span for the run, one per
 * scenario call, and each egress event of the run under the call it is attributed to,
 * exported to a collector of ours on loopback. The sandbox is the in-memory fake.
 */
let collector: OtlpCollector;
let tracing: Tracing;

beforeEach(async () => {
  collector = await startOtlpCollector();
  tracing = await openTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, logger: silentLogger(), version: "0.0.0-test" });
});

afterEach(async () => {
  await tracing.shutdown();
  await collector.close();
});

describe("scenario runs as traces", () => {
  it("exports the run, a span per scenario call, and the call's egress under it", async () => {
    const deps = fakeServices([{ name: "send_email", egress: [{ name: "api.mail.test", port: 443 }] }, { name: "list_templates" }]);
    const services: LaunchServices = { ...(await deps.openServices!({ io: undefined as never })), tracing };
    const policy = PolicySchema.parse({ version: 1, name: "mail", server: { image: { ref: "fake:latest" } } });
    const calls = [
      { tool: "send_email", arguments: { to: "someone@example.test" }, index: 0, repetition: 0 },
      { tool: "send_email", arguments: { to: "someone@example.test" }, index: 0, repetition: 1 },
      { tool: "list_templates", arguments: {}, index: 1, repetition: 0 },
    ];
    const result = await runScenario(services, { policy, policyFile: "/dev/null", capture: true, plan: () => ({ ok: true, calls }), settle: { quietMs: 20, maxMs: 200 } });
    expect(result.ok).toBe(true);

    // runScenario flushed before returning: the verb may exit right away.
    const run = await collector.waitFor((all) => all.find((s) => s.name === "hangar.scenario"), 2_000);
    expect(run.attributes).toMatchObject({ "hangar.server": "mail", "hangar.scenario.capture": true, "hangar.run": "fake-run", "hangar.outcome": "ok" });
    const callSpans = collector.spans.filter((s) => s.parentSpanId === run.spanId);
    expect(callSpans.map((s) => [s.name, s.attributes["hangar.scenario.index"], s.attributes["hangar.scenario.repetition"], s.attributes["hangar.outcome"]])).toEqual([
      ["tools/call send_email", 0, 0, "ok"],
      ["tools/call send_email", 0, 1, "ok"],
      ["tools/call list_templates", 1, 0, "ok"],
    ]);
    for (const [i, call] of callSpans.entries()) {
      const under = collector.spans.filter((s) => s.parentSpanId === call.spanId);
      if (i === 2) {
        expect(under).toEqual([]);
        continue;
      }
      // Each send_email's own DNS lookup and connection (with its bytes), not the other's.
      expect(under.map((s) => s.name).sort()).toEqual(["hangar.dns", "hangar.egress"]);
      expect(under.find((s) => s.name === "hangar.egress")?.attributes).toMatchObject({ "server.address": "api.mail.test", "server.port": 443, "hangar.egress.verdict": "allow", "hangar.egress.bytes_up": 100, "hangar.egress.bytes_down": 50 });
    }
    expect(collector.bodies.join("\n")).not.toContain("someone@example.test");
  });
});
