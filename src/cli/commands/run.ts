import { createWriteStream, type WriteStream } from "node:fs";
import { isAbsolute, join } from "node:path";
import { createInterface } from "node:readline";
import { declaredHostCheck, describeArgumentViolations } from "../../core/gateway/argument-rules.js";
import { describeArgumentFindings } from "../../core/gateway/argument-scan.js";
import { describeResultFindings } from "../../core/gateway/result-scan.js";
import type { Mode, Policy } from "../../core/policy/policy-schema.js";
import { pipeGuardedStdio } from "../../gateway/guarded-stdio.js";
import { ToolRulesGuard } from "../../gateway/tool-rules-guard.js";
import { formatIssues, loadPolicyFile } from "../../policy/index.js";
import type { SandboxEvent, StartedSandbox } from "../../runtime/index.js";
import { ServerLogStore, type ServerLogWriter } from "../../runtime/server-log-store.js";
import { formatPhases, StartPhases } from "../../runtime/start-phases.js";
import { defaultStateDir } from "../../runtime/state-dir.js";
import { EXIT_FINDING, EXIT_OK, EXIT_USAGE, type CliIo } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { formatEvent } from "../format-event.js";
import { dockerUnavailableMessage } from "../docker-context.js";
import { openRuntimeContext, type RuntimeContext } from "../runtime-context.js";

export const runCommand = defineCommand({
  name: "run",
  summary: "Run one MCP server in its sandbox and bridge MCP stdio (usable as a client's server command)",
  usage: "hangar run <policy> [--config hangar.yaml] [--mode observing|enforcing] [--events <file.jsonl>] [--quiet] [--verbose]",
  description:
    "Builds whatever images are missing, starts the sandbox (an internal network with no route out,\n" +
    "the sidecar, the hardened server) and bridges the server's MCP stdio on this process's stdin and\n" +
    "stdout, so `hangar run policies/x.yaml` can be the command of a Claude Desktop or Cursor server entry.\n" +
    "Progress, the server's stderr and the sidecar's events go to stderr; stdout carries only MCP.\n" +
    "The server's stderr is also kept under the state directory ($HANGAR_STATE_DIR), for `hangar logs`.\n" +
    "The policy's tools section applies as under `hangar serve`: refused tools are left out of tools/list,\n" +
    "and a call to one, with arguments outside tools.arguments, or past tools.rateLimit, gets an MCP error\n" +
    "without reaching the server; tool results with injection cues are reported, and withheld under\n" +
    "tools.results: strict (ENFORCING).\n" +
    "When stdin closes, or on SIGINT/SIGTERM, everything is torn down.",
  options: {
    config: { type: "string", valueName: "<hangar.yaml>", description: "Runtime config (egress network, trusted ranges, sidecar limits)." },
    mode: { type: "string", valueName: "<mode>", description: "Override the policy's egress mode: observing or enforcing." },
    events: { type: "string", valueName: "<file.jsonl>", description: "Also append every event, as JSON lines (sidecar event schema v1), to this file." },
    quiet: { type: "boolean", short: "q", description: "Do not print events and progress on stderr (errors still print)." },
    verbose: { type: "boolean", short: "v", description: "Also print image build output and where the start's time went, phase by phase (also HANGAR_VERBOSE=1)." },
  },
  positionals: { min: 1, max: 1 },
  details: "Exit status: 0 after a clean shutdown, 1 if the policy is invalid or the server failed, 2 on a usage or runtime error.",
  async run({ values, positionals }, io) {
    // From this process's start: node itself and the CLI's code.
    const phases = new StartPhases();
    phases.record("cli", performance.now());
    const policyFile = positionals[0]!;
    const mode = values.mode;
    if (mode !== undefined && mode !== "observing" && mode !== "enforcing") {
      throw usageError(`--mode ${JSON.stringify(mode)} is not a mode; expected observing or enforcing`);
    }
    if (io.stdio === undefined) throw usageError("hangar run needs the process's stdin and stdout");
    const loaded = await phases.time("policy", () => loadPolicyFile(policyFile));
    if (!loaded.ok) {
      io.err(formatIssues(loaded.issues));
      // A client (Claude Desktop, Cursor) may start us in "/": say where a relative path was looked for.
      if (!isAbsolute(policyFile) && loaded.issues.some((i) => i.code === "file_not_found")) {
        io.err(`hangar: ${policyFile} was looked for relative to ${process.cwd()}; give an absolute path when the caller's folder differs\n`);
      }
      return EXIT_FINDING;
    }
    const quiet = values.quiet === true;
    const verbose = values.verbose === true || io.env["HANGAR_VERBOSE"] === "1";
    const say = (text: string): void => {
      if (!quiet) io.err(`${text}\n`);
    };
    // A missing secret is known now: say so before any engine or image work.
    const missing = loaded.policy.server.secrets.filter((name) => io.env[name] === undefined);
    if (missing.length > 0) {
      io.err(`hangar: ${policyFile}: server.secrets: ${missing.map((n) => JSON.stringify(n)).join(", ")} ${missing.length === 1 ? "is" : "are"} not set in the environment; nothing was started\n`);
      return EXIT_USAGE;
    }
    let ctx: RuntimeContext;
    try {
      ctx = await phases.time("docker", () => openRuntimeContext({ ...(values.config !== undefined ? { configFile: values.config } : {}), io }));
    } catch (err) {
      const line = dockerUnavailableMessage(err, io.env);
      if (line === undefined) throw err;
      io.err(`${line}\n`);
      return EXIT_USAGE;
    }
    const { runtime } = ctx.config;
    const images = await phases.time("images", () => ctx.services.images.ensure({
      policy: loaded.policy,
      policyFile,
      baseImage: runtime.baseImage,
      sidecarImage: runtime.sidecar.image,
      onProgress: (p) => {
        if (p.phase !== "build" || verbose) say(`hangar: ${p.image}: ${p.phase}: ${p.message}`);
      },
    }));

    // The policy folder and the server's stderr (hangar logs) live here; it labels the sandbox too.
    const stateDir = defaultStateDir(io.env);
    let eventsFile: WriteStream | undefined;
    if (values.events !== undefined) eventsFile = createWriteStream(values.events, { flags: "a" });
    let sandboxPhases: Record<string, number> = {};
    const onEvent = (event: SandboxEvent): void => {
      if (isSandboxStarted(event)) sandboxPhases = event.detail.phases;
      eventsFile?.write(`${JSON.stringify(isSandboxStarted(event) ? { ...event, detail: { ...event.detail, phases: { ...phases.toJSON(), ...event.detail.phases } } } : event)}\n`);
      say(`hangar: ${formatEvent(event)}`);
    };

    const sandbox = await phases.time("sandbox", () => ctx.services.sandboxes.start({
      policy: loaded.policy,
      policyFile,
      runtime: ctx.config,
      image: images.server,
      onEvent,
      secretSource: io.env,
      stateDir,
      ...(mode !== undefined ? { mode } : {}),
      // Created on demand for this run if missing; the last `hangar run` out removes it.
      removeEgressWhenUnused: true,
    }));
    if (verbose) {
      const { sandbox: total, ...before } = phases.toJSON();
      say(`hangar: start phases: ${formatPhases({ ...before, ...sandboxPhases, ...(total !== undefined ? { sandbox: total } : {}) })}`);
    }
    say(`hangar: ${sandbox.server} is running (run ${sandbox.run}, sidecar ${sandbox.sidecarAddress}); MCP on stdin/stdout`);
    // Kept for `hangar logs`, during the run and after it; a log that cannot be opened is only a warning.
    const serverLog = await new ServerLogStore({ dir: join(stateDir, "logs") }).open(sandbox.server, sandbox.run).catch((err: unknown) => {
      io.err(`hangar: warning: the server's stderr will not be kept for hangar logs: ${(err as Error).message}\n`);
      return undefined;
    });
    // Arguments and results are checked as under `hangar serve`, in the run's effective mode.
    const bridged = bridge(sandbox, loaded.policy, mode ?? loaded.policy.egress.mode, io, say, serverLog);
    try {
      return await bridged.ended;
    } finally {
      // The pipes stay until the sandbox is gone: in its EOF grace the server's last answers still reach the client.
      await sandbox.stop().finally(() => {
        bridged.close();
        serverLog?.close();
      });
      await new Promise<void>((resolve) => (eventsFile ? eventsFile.end(resolve) : resolve()));
      say(`hangar: ${sandbox.server} stopped; sandbox removed`);
    }
  },
});

/** The runtime's sandbox-started event, which carries the sandbox's start phases (ms by name). */
function isSandboxStarted(event: SandboxEvent): event is SandboxEvent & { detail: { phases: Record<string, number> } } {
  return event.type === "runtime" && event.action === "sandbox-started" && typeof event.detail?.["phases"] === "object" && event.detail["phases"] !== null;
}

/**
 * Pipes MCP both ways, through the policy's tool rules. `ended` resolves with the exit status
 * when stdin closes, a signal arrives, or the server exits; close() undoes the piping.
 */
function bridge(
  sandbox: StartedSandbox,
  policy: Policy,
  mode: Mode,
  io: CliIo,
  say: (text: string) => void,
  serverLog: ServerLogWriter | undefined,
): { ended: Promise<number>; close: () => void } {
  const { stdin, stdout } = io.stdio!;
  createInterface({ input: sandbox.stderr }).on("line", (line) => {
    serverLog?.write(line);
    io.err(`[${sandbox.server}] ${line}\n`);
  });

  const stdinClosed = new Promise<"stdin-closed">((resolve) => stdin.once("end", () => resolve("stdin-closed")));
  const guard = new ToolRulesGuard({ server: sandbox.server, tools: policy.tools, now: () => Date.now(), arguments: { mode }, mode, declaredHost: declaredHostCheck(policy) });
  const unpipe = pipeGuardedStdio(
    guard,
    { fromClient: stdin, toClient: stdout, toServer: sandbox.stdin, fromServer: sandbox.stdout },
    {
      onRefused: (tool, error) => say(`hangar: tools/call ${JSON.stringify(tool)} refused: ${error.message}`),
      onFlagged: (tool, findings) => say(`hangar: tools/call ${JSON.stringify(tool)} would be refused (observing): ${describeArgumentFindings(findings)}`),
      onRuled: (tool, violations) => say(`hangar: tools/call ${JSON.stringify(tool)} would be refused (observing): argument ${describeArgumentViolations(violations)}`),
      onResult: ({ tool, verdict, findings }) =>
        say(`hangar: result of tools/call ${JSON.stringify(tool)} ${verdict === "block" ? "withheld" : verdict === "would-block" ? "would be withheld (observing)" : "flagged"}: ${describeResultFindings(findings)}`),
      onOversize: (from, bytes) => io.err(`hangar: dropped a ${bytes}-byte MCP line from the ${from}: too long\n`),
    },
  );
  // Subscribed until close(): a signal during the (sub-second) teardown does not cut it short.
  let stopping = false;
  let unsubscribe: () => void = () => undefined;
  const signalled = new Promise<"signal">((resolve) => {
    unsubscribe = io.onSignal?.((signal) => {
      if (!stopping) say(`hangar: ${signal}: stopping ${sandbox.server}`);
      resolve("signal");
    }) ?? unsubscribe;
  });
  const exited = sandbox.serverExit.then((code) => ({ code }));
  // The client closing stdin is done: the sandbox's stop gives the server its EOF grace.
  const ended = Promise.race([stdinClosed, signalled, exited]).then((first) => {
    stopping = true;
    if (first === "stdin-closed" || first === "signal") return EXIT_OK;
    say(`hangar: ${sandbox.server} exited with code ${first.code}`);
    return first.code === 0 ? EXIT_OK : EXIT_FINDING;
  });
  const close = (): void => {
    unsubscribe();
    unpipe();
    // Let stdin go, or this process would wait on it forever.
    stdin.pause();
  };
  return { ended, close };
}
