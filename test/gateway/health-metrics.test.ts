import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseHangarConfigText } from "../../src/gateway/config/load-hangar-config.js";
import { HttpEndpoint } from "../../src/gateway/http-endpoint.js";
import type { OpenGateway } from "../../src/gateway/open-gateway.js";
import { ProcessMetrics } from "../../src/gateway/process-metrics.js";
import { TokenStore } from "../../src/gateway/token-file.js";
import { silentLogger } from "../../src/log.js";
import { hangar } from "../cli/capture-io.js";
import { approve, eventually, FAST_GATEWAY, loadConfig, openTestGateway, project, type Project } from "./support/harness.js";
import { parsePrometheusText } from "./support/prometheus-text.js";

/**
 * The HTTP endpoint's probes and /metrics, over real loopback: /healthz and /readyz answer
 * without a token, /metrics needs one unless gateway.metrics.public, and it carries the
 * process and Node.js defaults beside the gateway's own metrics, in a valid exposition.
 */
let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

const GATEWAY_METRICS = [
  "hangar_tool_calls_total",
  "hangar_tool_call_duration_seconds",
  "hangar_egress_events_total",
  "hangar_manifest_drift_total",
  "hangar_server_state",
  "hangar_server_restarts_total",
  "hangar_breaker_open",
];
const DEFAULT_METRICS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_open_fds",
  "process_max_fds",
  "nodejs_eventloop_lag_seconds",
  "nodejs_eventloop_lag_p50_seconds",
  "nodejs_eventloop_lag_p99_seconds",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_heap_size_total_bytes",
  "nodejs_heap_size_used_bytes",
  "nodejs_external_memory_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_version_info",
  "nodejs_gc_duration_seconds",
];

interface Served {
  readonly base: string;
  readonly token: string;
  readonly opened: OpenGateway;
  readonly http: HttpEndpoint;
}

/** One approved server behind the HTTP endpoint on 127.0.0.1:0, and a token for root. */
async function serve(gateway: Record<string, unknown> = {}): Promise<Served & AsyncDisposable> {
  const file = await p.policy("alpha");
  p.writeConfig({ servers: ["policies/alpha.yaml"], identity: "root", gateway: { ...FAST_GATEWAY, ...gateway }, rbac: { roles: { admin: { allow: ["*"] } }, bindings: { root: ["admin"] } } });
  await approve(p.config, [file]);
  const created = await hangar(["token", "create", "--identity", "root", "--config", p.config]);
  expect(created.code).toBe(0);
  const config = await loadConfig(p.config);
  const opened = await openTestGateway(p.config);
  const tokens = new TokenStore(config.paths.tokens);
  await tokens.load();
  const http = new HttpEndpoint({ gateway: opened.gateway, tokens, metrics: opened.metrics, metricsPublic: config.metrics.public, audit: opened.audit, version: "0.0.0-test", logger: silentLogger() });
  const url = await http.listen("127.0.0.1", 0);
  return {
    base: url.replace(/\/mcp$/, ""),
    token: created.stdout.trim(),
    opened,
    http,
    [Symbol.asyncDispose]: async () => {
      await http.close();
      await opened.close();
    },
  };
}

async function json(res: Response): Promise<unknown> {
  return JSON.parse(await res.text()) as unknown;
}

describe("probes", () => {
  it("/healthz and /readyz answer 200 without a token, and say nothing about servers or identities", async () => {
    await using s = await serve();
    const health = await fetch(`${s.base}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get("cache-control")).toBe("no-store");
    expect(await json(health)).toEqual({ status: "ok" });
    const ready = await fetch(`${s.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: "ready" });
    const head = await fetch(`${s.base}/readyz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(`${s.base}/healthz`, { method: "POST" })).status).toBe(405);
    // A token is not needed, and a wrong one does not turn a probe into a 401.
    expect((await fetch(`${s.base}/healthz`, { headers: { authorization: "Bearer wrong" } })).status).toBe(200);
    expect((await fetch(`${s.base}/livez`)).status).toBe(404);
  });

  it("/readyz is 503 with its reasons when the audit log cannot be written, or every server is DEAD; /healthz stays 200", async () => {
    await using s = await serve();
    rmSync(join(p.dir, ".hangar"), { recursive: true, force: true });
    const broken = await fetch(`${s.base}/readyz`);
    expect(broken.status).toBe(503);
    expect(await json(broken)).toEqual({ status: "not ready", reasons: ["the audit log is not writable"] });

    // Closing the gateway stops every server (DEAD) while the endpoint still listens.
    await s.opened.gateway.close();
    const dead = await fetch(`${s.base}/readyz`);
    expect(dead.status).toBe(503);
    expect(((await json(dead)) as { reasons: string[] }).reasons).toContain("every server is DEAD (restart budget spent or shut down)");
    expect((await fetch(`${s.base}/healthz`)).status).toBe(200);
  });
});

describe("/metrics", () => {
  it("needs a bearer token by default; with one it is a valid exposition of ours plus the process and Node.js defaults", async () => {
    await using s = await serve();
    expect((await fetch(`${s.base}/metrics`)).status).toBe(401);
    const res = await fetch(`${s.base}/metrics`, { headers: { authorization: `Bearer ${s.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parsePrometheusText(await res.text());
    for (const name of [...GATEWAY_METRICS, ...DEFAULT_METRICS]) expect(families.has(name), name).toBe(true);
    expect(families.get("hangar_tool_call_duration_seconds")?.type).toBe("histogram");
    expect(families.get("nodejs_gc_duration_seconds")?.type).toBe("histogram");
    expect(families.get("process_cpu_seconds_total")?.type).toBe("counter");

    const value = (name: string): number | undefined => families.get(name)?.samples[0]?.value;
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
    expect(value("process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(Math.abs(value("process_start_time_seconds")! - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    expect(value("process_open_fds")).toBeGreaterThan(2);
    expect(value("nodejs_active_resources_total")).toBeGreaterThan(0);
    expect(families.get("nodejs_version_info")?.samples[0]?.labels).toMatchObject({ version: process.version });
  });

  it("gateway.metrics.public serves /metrics without a token; /mcp still needs one", async () => {
    await using s = await serve({ metrics: { public: true } });
    const res = await fetch(`${s.base}/metrics`);
    expect(res.status).toBe(200);
    expect(parsePrometheusText(await res.text()).has("process_cpu_seconds_total")).toBe(true);
    expect((await fetch(`${s.base}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401);
  });

  it("the option is checked like every key of hangar.yaml", () => {
    const parse = (metrics: unknown): ReturnType<typeof parseHangarConfigText> => parseHangarConfigText(JSON.stringify({ servers: ["a.yaml"], gateway: { metrics } }), "hangar.yaml");
    const ok = parse({ public: true });
    expect(ok.ok && ok.data.gateway.metrics.public).toBe(true);
    const absent = parseHangarConfigText("servers: [a.yaml]\n", "hangar.yaml");
    expect(absent.ok && absent.data.gateway.metrics.public).toBe(false);
    const bad = parse({ public: "yes" });
    expect(bad.ok ? [] : bad.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual(['gateway.metrics.public: "yes" is not true or false']);
    const typo = parse({ pubilc: true });
    expect(typo.ok ? [] : typo.issues.map((i) => i.message)).toEqual([expect.stringMatching(/unknown key "pubilc"; did you mean "public"\?/)]);
  });
});

describe("ProcessMetrics", () => {
  it("observes GC pauses and event-loop delay while started, and stops cleanly (twice)", async () => {
    const metrics = new ProcessMetrics({ eventLoopResolutionMs: 1 }).start();
    try {
      let garbage: number[][] = [];
      const text = await eventually(() => {
        for (let i = 0; i < 2000; i++) garbage.push(new Array(100).fill(i));
        garbage = garbage.slice(-100);
        const t = metrics.render();
        return /^nodejs_gc_duration_seconds_count\{kind="(minor|major|incremental)"\} [1-9]/m.test(t) && /^nodejs_eventloop_lag_p99_seconds \d/m.test(t) ? t : undefined;
      }, 10_000, "a GC observation");
      const families = parsePrometheusText(text);
      expect(families.get("nodejs_eventloop_lag_max_seconds")?.samples[0]?.value).toBeGreaterThan(0);
    } finally {
      metrics.close();
      metrics.close();
    }
    expect(parsePrometheusText(metrics.render()).has("process_cpu_seconds_total")).toBe(true);
  });

  it("counts CPU from process start, monotonically across scrapes", () => {
    const metrics = new ProcessMetrics();
    const cpu = (): number => parsePrometheusText(metrics.render()).get("process_cpu_seconds_total")!.samples[0]!.value;
    const first = cpu();
    const used = process.cpuUsage();
    expect(first).toBeCloseTo((used.user + used.system) / 1e6, 1);
    for (let i = 0; i < 1e6; i++) Math.sqrt(i);
    expect(cpu()).toBeGreaterThanOrEqual(first);
  });
});
