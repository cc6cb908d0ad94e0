/**
 * Gateway overhead on tools/call: the same fixture MCP server, called directly over stdio
 * and through the gateway, side by side in one run, rounds interleaved so drift hits all
 * variants alike. Target (DESIGN.md): ≤ 0.2 ms added at p50 over a direct stdio session.
 *   direct        SDK client → stdio → fixture server
 *   gateway       SDK client → stdio → `hangar serve` process → stdio → fixture server
 *                 (RBAC, policy rules, manifest check, attribution, audit group commit included)
 *   in-process    SDK client → in-memory transport → Gateway → stdio → fixture server
 *                 (the gateway's own logic, without the extra process hop)
 *   in-process+checks  the same, with a policy that labels the tool, a tools.arguments rule
 *                 and a hangar.yaml flow: the added p50 of argument rules and flow tracking;
 *                 plus the CPU per call of those checks, the argument scan and the result scan alone
 *
 *   gateway+otel, in-process+otel, in-process+otel-json
 *                 the same with OpenTelemetry tracing on (OTEL_EXPORTER_OTLP_ENDPOINT), exporting
 *                 OTLP/HTTP (protobuf; JSON for the last) to a receiver of ours on loopback: the
 *                 added p50 of tracing, and its CPU per call, against the same variants untraced
 *
 *   gateway@baseline  with --baseline <dir>: `hangar serve` of another checkout (its
 *                 src/cli/main.ts, e.g. `git archive HEAD` unpacked in /tmp with node_modules
 *                 linked), on its own copy of the project: before and after, side by side
 *   --serve-only  only direct, gateway and gateway@baseline (no in-process, checks or tracing variants)
 *   --dist        run `hangar serve` as it ships (`node dist/cli/main.js` of each tree, built) instead of src through tsx
 *   --serve-cpu-prof <dir>  run each `hangar serve` under `node --cpu-prof`, profiles written to <dir>
 *
 *   node --import tsx bench/gateway-call.ts [--calls 2000] [--rounds 5] [--baseline <dir>] [--serve-only] [--json]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { stringify } from "yaml";
import { AuditStore } from "../src/audit/audit-store.js";
import { checkArgumentRules, type ArgumentRule } from "../src/core/gateway/argument-rules.js";
import { scanArguments } from "../src/core/gateway/argument-scan.js";
import { FlowTracker } from "../src/core/gateway/flow-tracker.js";
import { scanResult } from "../src/core/gateway/result-scan.js";
import { runPins } from "../src/core/gateway/source-pins.js";
import type { ToolLabel } from "../src/core/policy/policy-schema.js";
import { approvalDecisionEntry, approvalRequestEntry } from "../src/gateway/approval-ledger.js";
import { openTracing } from "../src/telemetry/open-tracing.js";
import { cpuMsOf, selfCpuMs } from "./cpu.js";
import { loadHangarConfigOrThrow, type HangarConfig } from "../src/gateway/config/load-hangar-config.js";
import { LocalProcessLauncher } from "../src/gateway/local-process-launcher.js";
import { createSessionServer } from "../src/gateway/mcp-endpoint.js";
import { openGateway } from "../src/gateway/open-gateway.js";
import { silentLogger } from "../src/log.js";
import { fixtureServerCommand } from "../test/gateway/support/fixture-server.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
    baseline: { type: "string" },
    "serve-only": { type: "boolean", default: false },
    "serve-cpu-prof": { type: "string" },
    dist: { type: "boolean", default: false },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const WARMUP = 300;
const SERVE_ONLY = values["serve-only"] === true;
/** Node flags for each `hangar serve` process (a CPU profile when asked for). */
const SERVE_NODE_ARGS = values["serve-cpu-prof"] !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${values["serve-cpu-prof"]}`] : [];
/** Node arguments that run the `hangar` CLI of the tree at `root`: its src through tsx, or its built dist (--dist). */
const cliArgs = (root: string): string[] => (values.dist === true ? [join(root, "dist/cli/main.js")] : ["--import", import.meta.resolve("tsx"), join(root, "src/cli/main.ts")]);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The flow of the in-process+checks variant (declared up here: the module body runs top to bottom). */
const CHECKS_FLOW = { name: "toxic-flow", deny: { after: ["reads-private"] as ToolLabel[], call: ["writes-public"] as ToolLabel[] } };

interface Variant {
  readonly name: string;
  readonly client: Client;
  readonly tool: string;
  readonly samples: number[];
  /** The `hangar serve` process, whose CPU per measured call is reported. */
  readonly pid?: number | undefined;
  cpuMs?: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function callMany(v: Variant, n: number, record: boolean): Promise<void> {
  const cpuBefore = record && v.pid !== undefined ? cpuMsOf(v.pid) : undefined;
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint();
    await v.client.callTool({ name: v.tool, arguments: { message: `m${i}` } });
    if (record) v.samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const cpuAfter = cpuBefore !== undefined ? cpuMsOf(v.pid!) : undefined;
  if (cpuBefore !== undefined && cpuAfter !== undefined) v.cpuMs = (v.cpuMs ?? 0) + cpuAfter - cpuBefore;
}

const pidOf = (client: Client): number | undefined => (client.transport as StdioClientTransport | undefined)?.pid ?? undefined;

const dir = mkdtempSync(join(tmpdir(), "hangar-gateway-bench-"));
const clients: Client[] = [];
let closeGateway: (() => Promise<void>) | undefined;
let traced: TracedVariants | undefined;
let closeChecks: (() => Promise<void>) | undefined;
try {
  // A project with one approved fixture server.
  const command = await fixtureServerCommand();
  const { file: configFile, config } = await approvedProject(dir, "fx", { version: 1, name: "fx", server: { build: { context: "." }, command, env: { FIXTURE_NAME: "fx" } } });

  const connect = async (transport: StdioClientTransport | InMemoryTransport): Promise<Client> => {
    const client = new Client({ name: "bench", version: "1.0.0" });
    await client.connect(transport);
    clients.push(client);
    return client;
  };
  const direct = await connect(new StdioClientTransport({ command: command[0]!, args: command.slice(1), env: { FIXTURE_NAME: "fx" }, stderr: "ignore" }));
  const viaServe = await connect(
    new StdioClientTransport({ command: process.execPath, args: [...SERVE_NODE_ARGS, ...cliArgs(ROOT), "serve", "--config", configFile, "--stdio", "--unsandboxed"], env: { ...process.env, HANGAR_LOG_LEVEL: "error" } as Record<string, string>, stderr: "ignore" }),
  );
  const baseline = values.baseline !== undefined ? await openBaselineServe(values.baseline, command, connect) : undefined;
  const opened = await openGateway({ config, launcher: new LocalProcessLauncher(), logger: silentLogger(), version: "bench", statusFile: false });
  closeGateway = () => opened.close();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createSessionServer(opened.gateway, () => ({ identity: "bench", session: "bench" }), { version: "bench", logger: silentLogger() }).connect(serverSide);
  const inProcess = await connect(clientSide);

  const variants: Variant[] = [
    { name: "direct", client: direct, tool: "echo", samples: [] },
    { name: "gateway", client: viaServe, tool: "fx__echo", samples: [], pid: pidOf(viaServe) },
    ...(baseline !== undefined ? [{ name: "gateway@baseline", client: baseline, tool: "fx__echo", samples: [], pid: pidOf(baseline) }] : []),
  ];
  if (!SERVE_ONLY) {
    const withChecks = await openChecksGateway(command);
    variants.push(
      { name: "in-process", client: inProcess, tool: "fx__echo", samples: [] },
      ...(traced = await openTracedVariants(command, connect)).variants,
      { name: "in-process+checks", client: await connect(withChecks.transport), tool: "fc__echo", samples: [] },
    );
  }
  for (const v of variants) await callMany(v, WARMUP, false);
  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) for (const v of variants) await callMany(v, perRound, true);

  const stats = variants.map((v) => {
    const sorted = [...v.samples].sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    const serveCpuMicrosPerCall = v.cpuMs !== undefined ? (v.cpuMs * 1000) / sorted.length : undefined;
    return { name: v.name, calls: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), mean, perSecond: 1000 / mean, serveCpuMicrosPerCall };
  });
  const base = stats[0]!;
  const rows = stats.map((s) => ({ ...s, ratioP50: s.p50 / base.p50, ratioP99: s.p99 / base.p99, addedP50: s.p50 - base.p50, addedP99: s.p99 - base.p99 }));
  if (values.json) {
    console.log(JSON.stringify({ calls: CALLS, rounds: ROUNDS, targetAddedP50Ms: 0.2, rows }, null, 2));
  } else {
    const f = (n: number, d = 3): string => n.toFixed(d);
    console.log(`tools/call latency, ${CALLS} calls per variant in ${ROUNDS} interleaved rounds (ms; target: ≤ 0.200 ms added at p50)`);
    console.log(`${"variant".padEnd(22)}${"p50".padStart(8)}${"p90".padStart(8)}${"p99".padStart(8)}${"mean".padStart(8)}${"calls/s".padStart(9)}${"ratio p50".padStart(11)}${"ratio p99".padStart(11)}${"+ms p50".padStart(9)}${"+ms p99".padStart(9)}`);
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(22)}${f(r.p50).padStart(8)}${f(r.p90).padStart(8)}${f(r.p99).padStart(8)}${f(r.mean).padStart(8)}${f(r.perSecond, 0).padStart(9)}${f(r.ratioP50, 2).padStart(11)}${f(r.ratioP99, 2).padStart(11)}${f(r.addedP50).padStart(9)}${f(r.addedP99).padStart(9)}`,
      );
    }
    const gateway = rows[1]!;
    console.log(`gateway adds ${f(gateway.addedP50)} ms at p50: target ${gateway.addedP50 <= 0.2 ? "met" : "missed"}`);
    for (const r of rows) if (r.serveCpuMicrosPerCall !== undefined) console.log(`${r.name}: serve process CPU ${f(r.serveCpuMicrosPerCall, 0)} µs per call (/proc, measured rounds)`);
    const before = rows.find((r) => r.name === "gateway@baseline");
    if (before !== undefined) console.log(`baseline (${values.baseline}) adds ${f(before.addedP50)} ms at p50; this tree ${f(gateway.addedP50 - before.addedP50)} ms against it`);
  }
  printChecksCost(rows, values.json === true);
  await printTracingCost(rows, variants, traced, values.json === true);
} finally {
  for (const c of clients) await c.close().catch(() => undefined);
  await closeGateway?.();
  await closeChecks?.();
  await traced?.close();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A project in `root` with one server, `policy`, approved in its audit log as `hangar approve`
 * would (request, then grant). `extra` goes into hangar.yaml beside the usual settings.
 */
async function approvedProject(root: string, name: string, policy: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<{ file: string; config: HangarConfig }> {
  mkdirSync(join(root, "policies"), { recursive: true });
  mkdirSync(join(root, ".hangar"), { mode: 0o700, recursive: true });
  writeFileSync(join(root, `policies/${name}.yaml`), stringify(policy));
  const file = join(root, "hangar.yaml");
  writeFileSync(file, stringify({ servers: [`policies/${name}.yaml`], identity: "bench", gateway: { healthIntervalMs: 0, idleTimeoutMs: 0 }, ...extra }));
  const { config } = await loadHangarConfigOrThrow(file);
  const pins = runPins(config.servers[0]!.policy);
  const store = AuditStore.open({ path: config.auditPath, timer: false });
  store.append(approvalRequestEntry(`apr-${name}`, name, "bench", pins));
  store.append(approvalDecisionEntry({ id: `apr-${name}`, server: name, status: "pending", pins, requestedBy: "bench", requestedAt: "", seq: 1 }, "grant", "bench"));
  store.close();
  return { file, config };
}

/** `hangar serve` of another checkout (`<root>/src/cli/main.ts`) on its own copy of the project, approved the same way. */
async function openBaselineServe(root: string, command: string[], connect: (t: StdioClientTransport) => Promise<Client>): Promise<Client> {
  const { file } = await approvedProject(join(dir, "baseline"), "fx", { version: 1, name: "fx", server: { build: { context: "." }, command, env: { FIXTURE_NAME: "fx" } } });
  return connect(
    new StdioClientTransport({ command: process.execPath, args: [...SERVE_NODE_ARGS, ...cliArgs(root), "serve", "--config", file, "--stdio", "--unsandboxed"], env: { ...process.env, HANGAR_LOG_LEVEL: "error" } as Record<string, string>, stderr: "ignore" }),
  );
}

// ---- The gateway's argument rules, flow tracking and argument scan (issue 12) ----

/** A second gateway whose server policy labels echo, constrains its argument, and a flow that reads the label. */
async function openChecksGateway(command: string[]): Promise<{ transport: InMemoryTransport }> {
  const { config } = await approvedProject(
    join(dir, "checks"),
    "fc",
    {
      version: 1,
      name: "fc",
      server: { build: { context: "." }, command, env: { FIXTURE_NAME: "fc" } },
      tools: { labels: { echo: ["reads-private"] }, arguments: [{ tool: "echo", path: "message", allow: { match: ["m*"] } }] },
    },
    { flows: [CHECKS_FLOW] },
  );
  const opened = await openGateway({ config, launcher: new LocalProcessLauncher(), logger: silentLogger(), version: "bench", statusFile: false });
  closeChecks = () => opened.close();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createSessionServer(opened.gateway, () => ({ identity: "bench", session: "bench-checks" }), { version: "bench", logger: silentLogger() }).connect(serverSide);
  return { transport: clientSide };
}

/** CPU per call of the checks alone (no I/O): µs, best of 5 runs of 20 000 calls. */
function checksCpuMicros(): { argumentScan: number; argumentRules: number; flows: number; resultScan: number } {
  const rules: ArgumentRule[] = [{ tool: "echo", path: "message", allow: { match: ["m*"] } }];
  const tracker = new FlowTracker([CHECKS_FLOW]);
  const N = 20_000;
  const time = (work: (i: number) => void): number => {
    let best = Infinity;
    for (let run = 0; run < 5; run++) {
      const started = process.cpuUsage();
      for (let i = 0; i < N; i++) work(i);
      const used = process.cpuUsage(started);
      best = Math.min(best, (used.user + used.system) / N);
    }
    return best;
  };
  return {
    argumentScan: time((i) => scanArguments({ message: `m${i}` })),
    argumentRules: time((i) => checkArgumentRules(rules, "echo", { message: `m${i}` }, { declaredHost: () => false })),
    flows: time((i) => {
      tracker.check(`s${i % 100}`, ["reads-private"], "enforcing", i);
      tracker.record(`s${i % 100}`, { callId: `c${i}`, server: "fc", tool: "echo", labels: ["reads-private"], at: i });
    }),
    // The fixture's answer to echo, as every call's result is scanned (tools.results defaults to "flag").
    resultScan: time((i) => scanResult({ content: [{ type: "text", text: `fc: m${i}` }] })),
  };
}

function printChecksCost(rows: readonly { name: string; p50: number; p99: number }[], json: boolean): void {
  const plain = rows.find((r) => r.name === "in-process");
  const checked = rows.find((r) => r.name === "in-process+checks");
  if (plain === undefined || checked === undefined) return;
  const cpu = checksCpuMicros();
  const added = { p50: checked.p50 - plain.p50, p99: checked.p99 - plain.p99 };
  if (json) {
    console.log(JSON.stringify({ checks: { addedP50Ms: added.p50, addedP99Ms: added.p99, cpuMicrosPerCall: cpu } }, null, 2));
    return;
  }
  console.log(`argument rules + flow tracking add ${added.p50.toFixed(3)} ms at p50 (${added.p99.toFixed(3)} ms at p99) over in-process`);
  console.log(`CPU per call, checks alone: argument scan ${cpu.argumentScan.toFixed(2)} µs, argument rules ${cpu.argumentRules.toFixed(2)} µs, flow check+record ${cpu.flows.toFixed(2)} µs, result scan ${cpu.resultScan.toFixed(2)} µs`);
}

// ---- OpenTelemetry tracing on vs off (issue 14) ----

interface TracedVariants {
  readonly variants: Variant[];
  readonly sink: OtlpSink;
  readonly servePids: { plain?: number | undefined; traced?: number | undefined };
  close(): Promise<void>;
}

interface OtlpSink {
  readonly endpoint: string;
  exports(): number;
  bytes(): number;
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver of ours on loopback: drains every export and answers 200, as a collector does. */
async function startOtlpSink(): Promise<OtlpSink> {
  let exports = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on("data", (c: Buffer) => void (bytes += c.length));
    req.on("end", () => {
      exports += 1;
      res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    exports: () => exports,
    bytes: () => bytes,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `hangar serve` and an in-process gateway on the same project, traced; the in-process one twice (protobuf, JSON). */
async function openTracedVariants(command: string[], connect: (t: StdioClientTransport | InMemoryTransport) => Promise<Client>): Promise<TracedVariants> {
  const sink = await startOtlpSink();
  const { file, config } = await approvedProject(join(dir, "traced"), "fx", { version: 1, name: "fx", server: { build: { context: "." }, command, env: { FIXTURE_NAME: "fx" } } });
  const otelEnv = (protocol: string): Record<string, string> => ({ OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_SERVICE_NAME: "hangar-bench" });

  const serveTransport = new StdioClientTransport({
    command: process.execPath,
    // From src even with --dist: the bundled CLI cannot load the OTLP exporter (OTLPTraceExporter is not a constructor).
    args: ["--import", import.meta.resolve("tsx"), join(ROOT, "src/cli/main.ts"), "serve", "--config", file, "--stdio", "--unsandboxed"],
    env: { ...process.env, HANGAR_LOG_LEVEL: "error", ...otelEnv("http/protobuf") } as Record<string, string>,
    stderr: "ignore",
  });
  const viaServe = await connect(serveTransport);
  const closers: (() => Promise<void>)[] = [];
  const inProcess = async (protocol: string): Promise<Client> => {
    const tracing = await openTracing({ env: otelEnv(protocol), logger: silentLogger(), version: "bench" });
    const opened = await openGateway({ config, launcher: new LocalProcessLauncher(), logger: silentLogger(), version: "bench", statusFile: false, tracing });
    closers.push(async () => {
      await opened.close();
      await tracing.shutdown();
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await createSessionServer(opened.gateway, () => ({ identity: "bench", session: `bench-${protocol}` }), { version: "bench", logger: silentLogger() }).connect(serverSide);
    return connect(clientSide);
  };
  const variants: Variant[] = [
    { name: "gateway+otel", client: viaServe, tool: "fx__echo", samples: [] },
    { name: "in-process+otel", client: await inProcess("http/protobuf"), tool: "fx__echo", samples: [] },
    { name: "in-process+otel-json", client: await inProcess("http/json"), tool: "fx__echo", samples: [] },
  ];
  return {
    variants,
    sink,
    servePids: { traced: serveTransport.pid ?? undefined },
    close: async () => {
      for (const close of closers) await close();
      await sink.close();
    },
  };
}

/**
 * Tracing's cost: the added p50 (traced − untraced, same path, from the interleaved rounds)
 * and CPU per call, measured in 5 rounds of 1000 calls alternating traced and untraced:
 * the serve process's own CPU (/proc), and this process's for the in-process gateways.
 */
async function printTracingCost(rows: readonly { name: string; p50: number; p99: number }[], variants: readonly Variant[], traced: TracedVariants | undefined, json: boolean): Promise<void> {
  if (traced === undefined) return;
  const { sink, servePids } = traced;
  const row = (name: string): { p50: number; p99: number } | undefined => rows.find((r) => r.name === name);
  const pairs = [
    ["gateway", "gateway+otel"],
    ["in-process", "in-process+otel"],
    ["in-process", "in-process+otel-json"],
  ] as const;
  const variant = (name: string): Variant => variants.find((v) => v.name === name)!;
  servePids.plain = (variant("gateway").client.transport as StdioClientTransport | undefined)?.pid ?? undefined;
  const N = 1000;
  const cpuOf = async (name: string): Promise<number | undefined> => {
    const pid = name === "gateway" ? servePids.plain : name === "gateway+otel" ? servePids.traced : undefined;
    const read = (): number | undefined => (pid !== undefined ? cpuMsOf(pid) : selfCpuMs());
    const before = read();
    await callMany(variant(name), N, false);
    const after = read();
    return before === undefined || after === undefined ? undefined : ((after - before) * 1000) / N;
  };
  const cpu = new Map<string, number[]>();
  for (let round = 0; round < 5; round++) {
    for (const name of ["gateway", "gateway+otel", "in-process", "in-process+otel", "in-process+otel-json"]) {
      const us = await cpuOf(name);
      if (us !== undefined) cpu.set(name, [...(cpu.get(name) ?? []), us]);
    }
  }
  const med = (name: string): number => {
    const xs = [...(cpu.get(name) ?? [])].sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)] ?? Number.NaN;
  };
  await new Promise((r) => setTimeout(r, 6000)); // one batch delay: the last spans reach the receiver
  const out = pairs.map(([off, on]) => ({
    off,
    on,
    addedP50Ms: (row(on)?.p50 ?? Number.NaN) - (row(off)?.p50 ?? Number.NaN),
    addedP99Ms: (row(on)?.p99 ?? Number.NaN) - (row(off)?.p99 ?? Number.NaN),
    cpuMicrosPerCallOff: med(off),
    cpuMicrosPerCallOn: med(on),
  }));
  if (json) {
    console.log(JSON.stringify({ tracing: { pairs: out, exports: sink.exports(), exportedBytes: sink.bytes() } }, null, 2));
    return;
  }
  for (const p of out) {
    const whose = p.off === "gateway" ? "serve process" : "bench process (client + gateway)";
    console.log(
      `tracing (${p.on}) adds ${p.addedP50Ms.toFixed(3)} ms at p50, ${p.addedP99Ms.toFixed(3)} ms at p99 over ${p.off}; CPU per call (${whose}, median of 5×${N}): ${p.cpuMicrosPerCallOff.toFixed(0)} → ${p.cpuMicrosPerCallOn.toFixed(0)} µs`,
    );
  }
  console.log(`the receiver took ${sink.exports()} OTLP exports, ${(sink.bytes() / 1e6).toFixed(1)} MB`);
}
