import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { selectorTerms } from "../../src/docker/labels.js";
import { Pruner } from "../../src/runtime/pruner.js";
import { hangar } from "../cli/capture-io.js";
import { approve, textOf } from "../gateway/support/harness.js";
import { startOtlpCollector, type OtlpCollector, type ReceivedSpan } from "../gateway/support/otel-collector.js";
import { DockerTestEnv, realSidecarSourceExists, ROOT } from "./support/docker-test-env.js";
import { MAIN } from "./support/gateway-project.js";
import { startUpstream } from "./support/replay-services.js";
import { TEST_SIDECAR_IMAGE } from "./support/sidecar-image.js";

/**
 * Issue 14's trace, end to end: `hangar serve` with OTEL_* settings pointing at an OTLP/HTTP
 * collector of ours on loopback, the mail fixture v2 (the postmark-mcp 1.0.16 move) in its
 * Docker sandbox, and one `send_email` call that posts to the declared api.mail.test and
 * then tries collector.evil.test, which the policy does not declare. The collector must see
 * the call's span, the client's trace continued, and both egress attempts under it, as the
 * real sidecar reported them. The evil upstream's own counter proves nothing reached it.
 */
const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN = "b7ad6b7169203331";
const SIDECAR_DIST = process.env["HANGAR_TEST_SIDECAR_DIST"] !== undefined ? resolve(ROOT, process.env["HANGAR_TEST_SIDECAR_DIST"]) : join(ROOT, ".stage/test-dist");

let env: DockerTestEnv;
let collector: OtlpCollector;
let api: Awaited<ReturnType<typeof startUpstream>>;
let evil: Awaited<ReturnType<typeof startUpstream>>;
let server: string;
let config: string;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  collector = await startOtlpCollector();
  api = await startUpstream(env, "api.mail.test");
  evil = await startUpstream(env, "collector.evil.test");
  const dir = join(await env.stateRoot(), "project");
  await mkdir(join(dir, "policies"), { recursive: true });
  server = `mail-${env.run}`;
  // The fixture's v2 policy under a name of this run, its build context made absolute.
  const text = (await readFile(join(ROOT, "test/fixtures/mail-server/mail-v2.yaml"), "utf8"))
    .replace(/^name: mail$/m, `name: ${server}`)
    .replace(/^(\s+context:) image$/m, `$1 ${join(ROOT, "test/fixtures/mail-server/image")}`);
  const policyFile = join(dir, "policies", `${server}.yaml`);
  await writeFile(policyFile, text);
  const egress = await env.egressNetwork();
  config = join(dir, "hangar.yaml");
  await writeFile(
    config,
    stringify({
      version: 1,
      servers: [`policies/${server}.yaml`],
      identity: "local-user",
      audit: { path: ".hangar/audit.db" },
      runtime: { egressNetwork: egress.name, trustedUpstreamRanges: egress.subnets.map((s) => s.subnet), upstreamResolvers: await env.upstreamResolvers(), sidecar: { image: TEST_SIDECAR_IMAGE } },
      rbac: { roles: { all: { allow: ["*"] } }, bindings: { "*": ["all"] } },
      gateway: { startTimeoutMs: 120_000, callTimeoutMs: 30_000, healthIntervalMs: 0, idleTimeoutMs: 0 },
    }),
  );
  const init = await hangar(["init", "--dir", join(dir, ".hangar")]);
  if (init.code !== 0) throw new Error(`hangar init failed: ${init.stderr}`);
  await approve(config, [policyFile]);
}, 600_000);

afterAll(async () => {
  await collector?.close();
  if (server !== undefined) {
    await new Pruner(env.engine).prune({ server });
    // The server image `hangar serve` built for this run's name.
    const docker = new Dockerode();
    for (const image of await docker.listImages({ filters: { reference: [`hangar/server-${server}`] } })) {
      for (const tag of image.RepoTags ?? []) await docker.getImage(tag).remove().catch(() => undefined);
    }
  }
  await env?.cleanup();
  const left = [...(await env.engine.listContainers({ labels: selectorTerms({ server }) })), ...(await env.engine.listNetworks({ labels: selectorTerms({ server }) }))];
  expect(left).toEqual([]);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

const children = (all: readonly ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] => all.filter((s) => s.parentSpanId === parent.spanId);

describe.runIf(realSidecarSourceExists())("OpenTelemetry traces from hangar serve and a real sandbox", () => {
  it("one send_email call: its span continues the client's trace, with the allowed post and the blocked attempt under it", async () => {
    let stderr = "";
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ["--import", import.meta.resolve("tsx"), MAIN, "serve", "--config", config, "--stdio"],
      env: {
        ...(process.env as Record<string, string>),
        HANGAR_SIDECAR_DIST: SIDECAR_DIST,
        HANGAR_LOG_LEVEL: "info",
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "hangar-docker-test",
        OTEL_BSP_SCHEDULE_DELAY: "200",
      },
      stderr: "pipe",
    });
    transport.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    const client = new Client({ name: "otel-docker-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      // The first call starts the sandbox (its own trace); the traced call follows.
      expect(textOf(await client.callTool({ name: `${server}__list_templates`, arguments: {} }))).toContain("welcome");
      await new Promise((r) => setTimeout(r, 1_100));
      const apiBefore = await api.count();
      const sent = await client.callTool({
        name: `${server}__send_email`,
        arguments: { to: "ops@example.test", subject: "quarterly numbers", body: "secret-body-text" },
        _meta: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` },
      });
      expect(textOf(sent)).toBe(`sent "quarterly numbers" to ops@example.test`);
      expect(await api.count()).toBe(apiBefore + 1);
      // OUR undeclared upstream received nothing.
      expect(await evil.count()).toBe(0);

      const tree = await collector.waitFor((all) => {
        const call = all.find((s) => s.name === `tools/call ${server}__send_email`);
        if (call === undefined) return undefined;
        const under = children(all, call);
        const allowed = under.find((s) => s.name === "hangar.egress" && s.attributes["server.address"] === "api.mail.test" && s.attributes["hangar.egress.close_seen"] === true);
        const blocked = under.find((s) => s.attributes["server.address"] === "collector.evil.test" && s.attributes["hangar.egress.verdict"] === "block");
        return allowed !== undefined && blocked !== undefined ? { call, under, allowed, blocked } : undefined;
      }, 30_000);

      expect(tree.call.traceId).toBe(TRACE_ID);
      expect(tree.call.parentSpanId).toBe(CLIENT_SPAN);
      expect(tree.call.resource["service.name"]).toBe("hangar-docker-test");
      expect(tree.call.attributes).toMatchObject({
        "hangar.server": server,
        "hangar.tool": "send_email",
        "hangar.identity": "local-user",
        "hangar.mode": "enforcing",
        "hangar.rbac.verdict": "allow",
        "hangar.approval": "approved",
        "hangar.outcome": "ok",
      });
      expect(tree.allowed.traceId).toBe(TRACE_ID);
      expect(tree.allowed.attributes).toMatchObject({ "hangar.egress.verdict": "allow", "server.port": 80, "http.request.method": "POST", "hangar.egress.path": "transparent", "network.peer.address": api.ip });
      expect(tree.allowed.attributes["hangar.egress.bytes_up"]).toBeGreaterThan(0);
      expect(tree.allowed.attributes["hangar.egress.bytes_down"]).toBeGreaterThan(0);
      expect(tree.allowed.attributes["hangar.egress.reasons"]).toEqual(expect.arrayContaining([expect.any(String)]));
      expect(tree.blocked.attributes["hangar.egress.reasons"]).toContain("undeclared-host");
      expect(tree.blocked.status.code).toBe(2);
      // Within the call, by the sidecar's own clock.
      for (const s of [tree.allowed, tree.blocked]) expect(s.startMs).toBeGreaterThanOrEqual(tree.call.startMs - 5);
      console.log(`send_email span tree: ${tree.under.map((s) => `${s.name} ${String(s.attributes["server.address"])} ${String(s.attributes["hangar.egress.verdict"])}`).join("; ")}`);

      // The sandbox's start is traced too; arguments never are.
      expect(collector.spans.find((s) => s.name === "hangar.server.start" && s.attributes["hangar.server"] === server)?.attributes["hangar.lifecycle.to"]).toBe("READY");
      const exported = collector.bodies.join("\n");
      expect(exported).not.toContain("secret-body-text");
      expect(exported).not.toContain("ops@example.test");
    } finally {
      await client.close();
    }
    expect(stderr).toMatch(/exporting OpenTelemetry traces/);
  });
});
