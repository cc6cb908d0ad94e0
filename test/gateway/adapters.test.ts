import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { HangarError } from "../../src/core/errors.js";
import { MetricsRegistry, OVERFLOW_LABEL } from "../../src/gateway/metrics-registry.js";
import { StreamClientTransport } from "../../src/gateway/stream-client-transport.js";
import { hashToken, identityForToken, newToken, parseTokenFile } from "../../src/gateway/token-file.js";
import { fixtureServerCommand } from "./support/fixture-server.js";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the Prometheus text format, escaping label values", () => {
    const r = new MetricsRegistry();
    const calls = r.counter("t_calls_total", "Calls.", ["server", "tool"]);
    const state = r.gauge("t_state", "State.", ["server"]);
    const latency = r.histogram("t_seconds", "Latency.", ["server"], [0.1, 1]);
    calls.inc({ server: "a", tool: 'we"ird\\na\nme' });
    calls.inc({ server: "a", tool: 'we"ird\\na\nme' }, 2);
    state.set({ server: "a" }, 1);
    latency.observe({ server: "a" }, 0.05);
    latency.observe({ server: "a" }, 0.5);
    latency.observe({ server: "a" }, 5);
    expect(r.render()).toBe(
      [
        "# HELP t_calls_total Calls.",
        "# TYPE t_calls_total counter",
        't_calls_total{server="a",tool="we\\"ird\\\\na\\nme"} 3',
        "# HELP t_state State.",
        "# TYPE t_state gauge",
        't_state{server="a"} 1',
        "# HELP t_seconds Latency.",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{server="a",le="0.1"} 1',
        't_seconds_bucket{server="a",le="1"} 2',
        't_seconds_bucket{server="a",le="+Inf"} 3',
        't_seconds_sum{server="a"} 5.55',
        't_seconds_count{server="a"} 3',
        "",
      ].join("\n"),
    );
  });

  it("folds label sets past the cap into one overflow series", () => {
    const r = new MetricsRegistry(2);
    const c = r.counter("t_total", "T.", ["tool"]);
    for (const tool of ["a", "b", "c", "d"]) c.inc({ tool });
    expect(c.get({ tool: OVERFLOW_LABEL })).toBe(2);
    expect(r.render().split("\n").filter((l) => l.startsWith("t_total"))).toHaveLength(3);
  });
});

describe("bearer tokens", () => {
  it("stores only hashes and finds the identity by hash", () => {
    const { token, id } = newToken();
    const file = parseTokenFile(JSON.stringify({ version: 1, tokens: [{ id, identity: "alice", sha256: hashToken(token), createdAt: "" }] }), "t.json");
    expect(identityForToken(file, token)).toBe("alice");
    expect(identityForToken(file, `${token}x`)).toBeUndefined();
    expect(identityForToken(file, "")).toBeUndefined();
  });

  it("refuses a malformed token file with a typed error", () => {
    expect(() => parseTokenFile('{"version":1,"tokens":[{"id":"x","identity":"a","sha256":"nothex"}]}', "t.json")).toThrow(/tokens\[0\] needs id, identity and a 64-hex-digit sha256/);
    expect(() => parseTokenFile("{", "t.json")).toThrow(HangarError);
  });
});

describe("StreamClientTransport", () => {
  it("speaks MCP over a pair of streams (as a container attach provides them)", async () => {
    const [command, ...args] = await fixtureServerCommand();
    const child = spawn(command as string, args, { stdio: ["pipe", "pipe", "ignore"], env: { ...process.env, FIXTURE_NAME: "streams" } });
    const client = new Client({ name: "t", version: "1" });
    try {
      await client.connect(new StreamClientTransport(child.stdout, child.stdin));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
      const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
      expect(result.content).toEqual([{ type: "text", text: "streams: hi" }]);
    } finally {
      await client.close();
      child.kill();
    }
  });

  it("closes when the server's output ends", async () => {
    const [command, ...args] = await fixtureServerCommand();
    const child = spawn(command as string, args, { stdio: ["pipe", "pipe", "ignore"] });
    const transport = new StreamClientTransport(child.stdout, child.stdin);
    const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
    await transport.start();
    child.kill("SIGKILL");
    await closed;
  });
});
