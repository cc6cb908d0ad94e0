/**
 * What the stdio↔HTTP bridge (runtime.transport http, and every Kubernetes pod) costs per
 * tools/call, side by side in one run, rounds interleaved:
 *   stdio     SDK client → stdio → fixture server (what the gateway does with transport stdio)
 *   bridge    SDK client → streamable HTTP over a Unix socket (unixSocketFetch) → the bundled
 *             bridge process (dist/bridge/main.js) → stdio → the same fixture server
 * Printed: p50 per call, and CPU per call of the client (this process) and of the bridge
 * process (/proc), which a busy machine does not skew. Needs `npm run build` (the bundle).
 *
 *   node --import tsx bench/bridge.ts [--calls 1000] [--rounds 3] [--json]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { unixSocketFetch } from "../src/bridge/unix-socket-fetch.js";
import { hangarPackageRoot } from "../src/images/package-root.js";
import { fixtureServerCommand } from "../test/gateway/support/fixture-server.js";
import { cpuMsOf, selfCpuMs } from "./cpu.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "1000" }, rounds: { type: "string", default: "3" }, json: { type: "boolean", default: false } } });
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const WARMUP = 200;
const bundle = join(hangarPackageRoot(), "dist/bridge/main.js");
if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run "npm run build" first`);

const [command, ...args] = await fixtureServerCommand();
const dir = mkdtempSync(join(tmpdir(), "hangar-bench-bridge-"));
const socket = join(dir, "mcp.sock");

const direct = new Client({ name: "bench", version: "1" });
await direct.connect(new StdioClientTransport({ command: command!, args, stderr: "ignore" }));

const bridgeProcess = spawn(process.execPath, [bundle, "--listen", `unix:${socket}`, "--", command!, ...args], { stdio: ["ignore", "ignore", "ignore"] });
for (let i = 0; !existsSync(socket); i++) {
  if (i > 400) throw new Error("the bridge did not listen");
  await new Promise((r) => setTimeout(r, 25));
}
const bridged = new Client({ name: "bench", version: "1" });
await bridged.connect(new StreamableHTTPClientTransport(new URL("http://hangar-bridge/mcp"), { fetch: unixSocketFetch(socket) }));

const variants = [
  { name: "stdio", client: direct, pid: undefined as number | undefined },
  { name: "bridge", client: bridged, pid: bridgeProcess.pid },
];
const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const cpu = new Map<string, { client: number; bridge: number; calls: number }>(variants.map((v) => [v.name, { client: 0, bridge: 0, calls: 0 }]));

const call = (client: Client): Promise<unknown> => client.callTool({ name: "echo", arguments: { message: "bench" } });
for (const v of variants) for (let i = 0; i < WARMUP; i++) await call(v.client);
for (let round = 0; round < ROUNDS; round++) {
  for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
    const selfBefore = selfCpuMs();
    const bridgeBefore = v.pid !== undefined ? (cpuMsOf(v.pid) ?? 0) : 0;
    for (let i = 0; i < CALLS; i++) {
      const t = performance.now();
      await call(v.client);
      samples.get(v.name)!.push(performance.now() - t);
    }
    const c = cpu.get(v.name)!;
    c.client += selfCpuMs() - selfBefore;
    c.bridge += v.pid !== undefined ? (cpuMsOf(v.pid) ?? 0) - bridgeBefore : 0;
    c.calls += CALLS;
  }
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows = variants.map((v) => {
  const c = cpu.get(v.name)!;
  return { variant: v.name, p50Ms: p50(samples.get(v.name)!), clientCpuMsPerCall: c.client / c.calls, bridgeCpuMsPerCall: c.bridge / c.calls };
});
const [stdio, bridge] = rows;
const summary = { calls: CALLS * ROUNDS, rows, addedP50Ms: bridge!.p50Ms - stdio!.p50Ms, p50Ratio: bridge!.p50Ms / stdio!.p50Ms };
if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else {
  for (const r of rows) process.stdout.write(`${r.variant.padEnd(8)} p50 ${r.p50Ms.toFixed(3)} ms   client CPU ${r.clientCpuMsPerCall.toFixed(3)} ms/call   bridge CPU ${r.bridgeCpuMsPerCall.toFixed(3)} ms/call\n`);
  process.stdout.write(`bridge adds ${summary.addedP50Ms.toFixed(3)} ms at p50 (${summary.p50Ratio.toFixed(2)}x stdio), ${summary.calls} calls per variant\n`);
}

await direct.close();
await bridged.close();
bridgeProcess.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });
