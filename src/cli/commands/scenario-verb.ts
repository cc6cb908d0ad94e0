import { writeFile } from "node:fs/promises";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { loadScenarioFile, unknownToolIssues, type LoadedScenario } from "../../baseline/load-scenario.js";
import type { AttributedEgressEvent } from "../../core/baseline/observation.js";
import { HangarError } from "../../core/errors.js";
import { planCalls } from "../../core/baseline/scenario-schema.js";
import type { Policy } from "../../core/policy/policy-schema.js";
import type { ProgressListener } from "../../images/build-progress.js";
import { formatIssues, loadPolicyFile, type PolicyIssue } from "../../policy/index.js";
import { launchServicesFrom, type LaunchServices } from "../../replay/launch-services.js";
import type { CallPlan } from "../../replay/scenario-session.js";
import type { CliIo } from "../command.js";
import { usageError, type OptionSpec } from "../define-command.js";
import { openRuntimeContext } from "../runtime-context.js";
import { openTracing } from "../../telemetry/open-tracing.js";

/**
 * What the verbs that drive a server through tool calls share (baseline record, replay,
 * quarantine): their runtime, common options, input loading and progress on stderr.
 */
export interface ScenarioVerbDeps {
  /** How the verb gets its runtime; tests pass services around their own images. */
  readonly openServices?: (options: { readonly configFile?: string; readonly io: CliIo }) => Promise<LaunchServices>;
}

export async function openServices(deps: ScenarioVerbDeps, configFile: string | undefined, io: CliIo): Promise<LaunchServices> {
  const options = { ...(configFile !== undefined ? { configFile } : {}), io };
  if (deps.openServices) return deps.openServices(options);
  const ctx = await openRuntimeContext(options);
  // A span per run and per call when OTEL_* settings ask for traces (runScenario flushes them).
  return { ...launchServicesFrom(ctx), tracing: await openTracing({ env: io.env, logger: ctx.logger }) };
}

export const COMMON_OPTIONS = {
  config: { type: "string", valueName: "<hangar.yaml>", description: "Runtime config (egress network, trusted ranges, sidecar image), as for hangar run." },
  events: { type: "string", valueName: "<file.jsonl>", description: "Write every egress and DNS event of the run, with its tool attribution, as JSON lines." },
  timeout: { type: "string", valueName: "<seconds>", description: "Give up on a tool call (or on the server's start-up) after this long. Default 30." },
  quiet: { type: "boolean", short: "q", description: "Print no progress on stderr (errors still print)." },
} as const satisfies Record<string, OptionSpec>;

/** --timeout in milliseconds (default 30 s). */
export function parseTimeout(value: string | undefined): number {
  if (value === undefined) return 30_000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw usageError(`--timeout ${JSON.stringify(value)} is not a number of seconds (at most 3600)`);
  return Math.round(seconds * 1000);
}

export type Egress = "capture" | "live";

export function parseEgress(value: string | undefined): Egress {
  if (value === undefined || value === "capture" || value === "live") return value ?? "capture";
  throw usageError(`--egress ${JSON.stringify(value)} is not an egress mode; expected capture or live`);
}

export interface Reporter {
  readonly say: (line: string) => void;
  readonly build: ProgressListener;
  readonly serverLog: (line: string) => void;
}

/** Progress on stderr: build steps (the docker build lines only with HANGAR_VERBOSE=1), calls, the server's stderr. */
export function reporter(io: CliIo, server: string, quiet: boolean): Reporter {
  const say = (line: string): void => {
    if (!quiet) io.err(`hangar: ${line}\n`);
  };
  return {
    say,
    build: (p) => {
      if (p.phase !== "build" || io.env["HANGAR_VERBOSE"] === "1") say(`${p.image}: ${p.phase}: ${p.message}`);
    },
    serverLog: (line) => {
      if (!quiet) io.err(`[${server}] ${line}\n`);
    },
  };
}

/** The policy, or its issues printed (file:line:col) and undefined. Warnings print too. */
export async function loadPolicyOrReport(file: string, io: CliIo): Promise<Policy | undefined> {
  const loaded = await loadPolicyFile(file);
  if (!loaded.ok) {
    io.err(formatIssues(loaded.issues));
    return undefined;
  }
  return loaded.policy;
}

/** The scenario, or its issues printed (file:line:col: path: message, with "did you mean") and undefined. */
export async function loadScenarioOrReport(file: string, io: CliIo): Promise<LoadedScenario | undefined> {
  const loaded = await loadScenarioFile(file);
  if (!loaded.ok) {
    io.err(formatIssues(loaded.issues));
    return undefined;
  }
  if (loaded.warnings.length > 0) io.err(formatIssues(loaded.warnings));
  return loaded;
}

/** The scenario's calls, refused (every unknown tool positioned in the file) before any is made. */
export function scenarioPlan(loaded: LoadedScenario): (tools: readonly Tool[]) => CallPlan {
  return (tools) => {
    const issues: PolicyIssue[] = unknownToolIssues(loaded, tools.map((t) => t.name));
    if (issues.length > 0) return { ok: false, message: formatIssues(issues) };
    return { ok: true, calls: planCalls(loaded.scenario) };
  };
}

/**
 * A capture run sends nothing anywhere, so a missing secret gets a placeholder instead of
 * stopping the run: CI replays without credentials.
 */
export function captureSecrets(policy: Policy, env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of policy.server.secrets) out[name] ??= "hangar-capture-placeholder";
  return out;
}

/**
 * Runs `op` with an AbortSignal that SIGINT/SIGTERM abort: the run stops, its sandbox is
 * torn down, and the verb fails with one line (exit 2) instead of leaving containers behind.
 */
export async function interruptible<T>(io: CliIo, say: (line: string) => void, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const unsubscribe =
    io.onSignal?.((signal) => {
      say(`${signal}: stopping; the sandbox is being removed`);
      controller.abort(new HangarError("HANGAR_CLOSED", `interrupted by ${signal}`));
    }) ?? (() => undefined);
  try {
    return await op(controller.signal);
  } finally {
    unsubscribe();
  }
}

export async function writeEventsFile(file: string, events: readonly AttributedEgressEvent[]): Promise<void> {
  await writeFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(""));
}
