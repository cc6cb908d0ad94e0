/**
 * Gateway overhead on tools/call: the same fixture MCP server, called directly over stdio
 * and through the gateway, side by side in one run, rounds interleaved so drift hits all
 * variants alike. Target (DESIGN.md): ≤ 0.2 ms added at p50 over a direct stdio session.
 *   direct        SDK client → stdio → fixture server
 *   gateway       SDK client → stdio → `hangar serve` process → stdio → fixture server
 *                 (RBAC, policy rules, manifest check, attribution, audit group commit included)
 *   in-process    SDK client → in-memory transport → Gateway → stdio → fixture server
 *                 (the gateway's own logic, without the extra process hop)
 *
 *   node --import tsx bench/gateway-call.ts [--calls 2000] [--rounds 5] [--json]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { stringify } from "yaml";
import { AuditStore } from "../src/audit/audit-store.js";
import { runPins } from "../src/core/gateway/source-pins.js";
import { approvalDecisionEntry, approvalRequestEntry } from "../src/gateway/approval-ledger.js";
import { loadHangarConfigOrThrow } from "../src/gateway/config/load-hangar-config.js";
import { LocalProcessLauncher } from "../src/gateway/local-process-launcher.js";
import { createSessionServer } from "../src/gateway/mcp-endpoint.js";
import { openGateway } from "../src/gateway/open-gateway.js";
import { silentLogger } from "../src/log.js";
import { fixtureServerCommand } from "../test/gateway/support/fixture-server.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "2000" }, rounds: { type: "string", default: "5" }, json: { type: "boolean", default: false } } });
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const WARMUP = 300;
const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

interface Variant {
  readonly name: string;
  readonly client: Client;
  readonly tool: string;
  readonly samples: number[];
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function callMany(v: Variant, n: number, record: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint();
    await v.client.callTool({ name: v.tool, arguments: { message: `m${i}` } });
    if (record) v.samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
}

const dir = mkdtempSync(join(tmpdir(), "hangar-gateway-bench-"));
const clients: Client[] = [];
let closeGateway: (() => Promise<void>) | undefined;
try {
  // A project with one approved fixture server.
  const command = await fixtureServerCommand();
  mkdirSync(join(dir, "policies"));
  mkdirSync(join(dir, ".hangar"), { mode: 0o700 });
  const policyFile = join(dir, "policies/fx.yaml");
  writeFileSync(policyFile, stringify({ version: 1, name: "fx", server: { build: { context: "." }, command, env: { FIXTURE_NAME: "fx" } } }));
  const configFile = join(dir, "hangar.yaml");
  writeFileSync(configFile, stringify({ servers: ["policies/fx.yaml"], identity: "bench", gateway: { healthIntervalMs: 0, idleTimeoutMs: 0 } }));
  const { config } = await loadHangarConfigOrThrow(configFile);
  const store = AuditStore.open({ path: config.auditPath, timer: false });
  const request = approvalRequestEntry("apr-bench", "fx", "bench", runPins(config.servers[0]!.policy));
  store.append(request);
  store.append(approvalDecisionEntry({ id: "apr-bench", server: "fx", status: "pending", pins: runPins(config.servers[0]!.policy), requestedBy: "bench", requestedAt: "", seq: 1 }, "grant", "bench"));
  store.close();

  const connect = async (transport: StdioClientTransport | InMemoryTransport): Promise<Client> => {
    const client = new Client({ name: "bench", version: "1.0.0" });
    await client.connect(transport);
    clients.push(client);
    return client;
  };
  const direct = await connect(new StdioClientTransport({ command: command[0]!, args: command.slice(1), env: { FIXTURE_NAME: "fx" }, stderr: "ignore" }));
  const viaServe = await connect(
    new StdioClientTransport({ command: process.execPath, args: ["--import", import.meta.resolve("tsx"), MAIN, "serve", "--config", configFile, "--stdio", "--unsandboxed"], env: { ...process.env, HANGAR_LOG_LEVEL: "error" } as Record<string, string>, stderr: "ignore" }),
  );
  const opened = await openGateway({ config, launcher: new LocalProcessLauncher(), logger: silentLogger(), version: "bench", statusFile: false });
  closeGateway = () => opened.close();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createSessionServer(opened.gateway, () => ({ identity: "bench", session: "bench" }), { version: "bench", logger: silentLogger() }).connect(serverSide);
  const inProcess = await connect(clientSide);

  const variants: Variant[] = [
    { name: "direct", client: direct, tool: "echo", samples: [] },
    { name: "gateway", client: viaServe, tool: "fx__echo", samples: [] },
    { name: "in-process", client: inProcess, tool: "fx__echo", samples: [] },
  ];
  for (const v of variants) await callMany(v, WARMUP, false);
  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) for (const v of variants) await callMany(v, perRound, true);

  const stats = variants.map((v) => {
    const sorted = [...v.samples].sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    return { name: v.name, calls: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), mean, perSecond: 1000 / mean };
  });
  const base = stats[0]!;
  const rows = stats.map((s) => ({ ...s, ratioP50: s.p50 / base.p50, ratioP99: s.p99 / base.p99, addedP50: s.p50 - base.p50, addedP99: s.p99 - base.p99 }));
  if (values.json) {
    console.log(JSON.stringify({ calls: CALLS, rounds: ROUNDS, targetAddedP50Ms: 0.2, rows }, null, 2));
  } else {
    const f = (n: number, d = 3): string => n.toFixed(d);
    console.log(`tools/call latency, ${CALLS} calls per variant in ${ROUNDS} interleaved rounds (ms; target: ≤ 0.200 ms added at p50)`);
    console.log(`${"variant".padEnd(12)}${"p50".padStart(8)}${"p90".padStart(8)}${"p99".padStart(8)}${"mean".padStart(8)}${"calls/s".padStart(9)}${"ratio p50".padStart(11)}${"ratio p99".padStart(11)}${"+ms p50".padStart(9)}${"+ms p99".padStart(9)}`);
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(12)}${f(r.p50).padStart(8)}${f(r.p90).padStart(8)}${f(r.p99).padStart(8)}${f(r.mean).padStart(8)}${f(r.perSecond, 0).padStart(9)}${f(r.ratioP50, 2).padStart(11)}${f(r.ratioP99, 2).padStart(11)}${f(r.addedP50).padStart(9)}${f(r.addedP99).padStart(9)}`,
      );
    }
    const gateway = rows[1]!;
    console.log(`gateway adds ${f(gateway.addedP50)} ms at p50: target ${gateway.addedP50 <= 0.2 ? "met" : "missed"}`);
  }
} finally {
  for (const c of clients) await c.close().catch(() => undefined);
  await closeGateway?.();
  rmSync(dir, { recursive: true, force: true });
}
