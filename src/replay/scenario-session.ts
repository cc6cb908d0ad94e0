import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ErrorCode, McpError, type Prompt, type Resource, type ResourceTemplate, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { timestampMs, type AttributedEgressEvent } from "../core/baseline/observation.js";
import type { PlannedCall } from "../core/baseline/scenario-schema.js";
import { HangarError } from "../core/errors.js";
import type { EgressEvent } from "../core/events.js";
import type { Policy } from "../core/policy/policy-schema.js";
import { StreamClientTransport } from "../gateway/stream-client-transport.js";
import type { ProgressListener } from "../images/build-progress.js";
import type { SandboxEvent } from "../runtime/sandbox-events.js";
import type { CaptureOverride } from "../runtime/sandbox-specs.js";
import type { StartedSandbox } from "../runtime/started-sandbox.js";
import { NO_TRACING, type ScenarioSpan, type Tracing } from "../telemetry/tracing.js";
import { CallTimeline } from "./call-timeline.js";
import { EventLog } from "./event-log.js";
import type { LaunchServices } from "./launch-services.js";

/**
 * Drives one server through a list of tool calls in its sandbox: start it, connect the MCP
 * SDK's client over its stdio, list its tools, make the calls one at a time, wait for the
 * sidecar's events to settle, stop it, and attribute every event to the call in flight.
 * The verbs (baseline record, replay, quarantine) fold the result their own way.
 */
export type CallOutcome = "ok" | "tool-error" | "protocol-error" | "timeout";

export interface CallRecord {
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Position in the scenario and repetition (0-based). */
  readonly index: number;
  readonly repetition: number;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly outcome: CallOutcome;
  /** The tool's error text or the protocol error, clipped. */
  readonly detail?: string;
}

export interface ScenarioRun {
  readonly server: string;
  readonly serverInfo?: { readonly name: string; readonly version: string };
  readonly tools: readonly Tool[];
  /** With `listPromptsAndResources`: the server's other lists (empty where it advertises no such capability). */
  readonly lists?: { readonly prompts: readonly Prompt[]; readonly resources: readonly Resource[]; readonly resourceTemplates: readonly ResourceTemplate[] };
  readonly calls: readonly CallRecord[];
  /** Every egress and DNS event of the run, attributed, in arrival order. */
  readonly events: readonly AttributedEgressEvent[];
  /** Events past the log's bound, not kept. */
  readonly droppedEvents: number;
}

export type CallPlan = { readonly ok: true; readonly calls: readonly PlannedCall[] } | { readonly ok: false; readonly message: string };

export type ScenarioResult = { readonly ok: true; readonly run: ScenarioRun } | { readonly ok: false; readonly message: string; readonly tools: readonly Tool[] };

export interface ScenarioRequest {
  readonly policy: Policy;
  readonly policyFile: string;
  /** Capture for this run whatever the policy says (no egress at all). */
  readonly capture?: CaptureOverride;
  /** Frozen baseline for the sidecar to enforce; false for none; default the policy's own. */
  readonly baselineFile?: string | false;
  /** Where secrets come from (capture runs fill in placeholders). */
  readonly secretSource?: Readonly<Record<string, string | undefined>>;
  /** Chooses the calls once the server's tools are known; a refusal stops before any call. */
  plan(tools: readonly Tool[]): CallPlan;
  /** Also list prompts, resources and resource templates after the tools (approve request --quarantine). */
  readonly listPromptsAndResources?: boolean;
  readonly onProgress?: (line: string) => void;
  readonly onBuildProgress?: ProgressListener;
  /** Every sandbox event, as it arrives (for an --events file). */
  readonly onEvent?: (event: SandboxEvent) => void;
  /** The server's stderr, line by line. */
  readonly onServerLog?: (line: string) => void;
  /** Per call, and for initialize and tools/list. Default 30 s. */
  readonly callTimeoutMs?: number;
  /** After the last call: wait until no event came for quietMs (at most maxMs). Default 750 / 5000. */
  readonly settle?: { readonly quietMs: number; readonly maxMs: number };
  /** Aborting stops the run between or during calls; the sandbox is always torn down. */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const DEFAULT_SETTLE = { quietMs: 750, maxMs: 5000 };
const MAX_DETAIL = 300;

export async function runScenario(services: LaunchServices, request: ScenarioRequest): Promise<ScenarioResult> {
  const { policy } = request;
  const now = request.now ?? Date.now;
  const say = request.onProgress ?? (() => undefined);
  const image = await services.prepareImages({ policy, policyFile: request.policyFile, ...(request.onBuildProgress ? { onProgress: request.onBuildProgress } : {}) });
  request.signal?.throwIfAborted();
  const log = new EventLog(policy.name, now);
  const sandbox = await services.sandboxes.start({
    policy,
    policyFile: request.policyFile,
    runtime: services.config,
    image,
    ...(request.capture !== undefined ? { capture: request.capture } : {}),
    ...(request.baselineFile !== undefined ? { baselineFile: request.baselineFile } : {}),
    ...(request.secretSource !== undefined ? { secretSource: request.secretSource } : {}),
    ...(services.run !== undefined ? { run: services.run } : {}),
    ...(services.stateDir !== undefined ? { stateDir: services.stateDir } : {}),
    onEvent: (event) => {
      log.onEvent(event);
      request.onEvent?.(event);
    },
  });
  say(`${sandbox.server} is running in its sandbox (run ${sandbox.run}${request.capture !== undefined ? ", capture: nothing leaves" : ""})`);
  if (request.onServerLog) createInterface({ input: sandbox.stderr }).on("line", request.onServerLog);
  const tracing = services.tracing ?? NO_TRACING;
  const span = tracing.scenario({ server: policy.name, capture: request.capture !== undefined, run: sandbox.run });
  const driver = new ScenarioDriver(sandbox, { timeoutMs: request.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, now, say, span });
  let outcome = "error";
  // One listener for the whole run, raced against each step.
  const abort = request.signal === undefined ? undefined : aborted(request.signal);
  abort?.catch(() => undefined);
  const interruptible = <T>(op: Promise<T>): Promise<T> => (abort === undefined ? op : Promise.race([op, abort]));
  try {
    const tools = await interruptible(driver.connect());
    const lists = request.listPromptsAndResources === true ? await interruptible(driver.listOthers()) : undefined;
    const plan = request.plan(tools);
    if (!plan.ok) {
      outcome = "refused";
      return { ok: false, message: plan.message, tools };
    }
    const calls: CallRecord[] = [];
    for (const [i, call] of plan.calls.entries()) {
      request.signal?.throwIfAborted();
      const record = await interruptible(driver.call(call));
      calls.push(record);
      const detail = record.detail !== undefined ? `: ${record.detail}` : "";
      say(`call ${i + 1}/${plan.calls.length} ${call.tool}: ${record.outcome} in ${record.endedAt - record.startedAt} ms${detail}`);
    }
    const settle = request.settle ?? DEFAULT_SETTLE;
    await interruptible(log.quiet(settle.quietMs, settle.maxMs));
    const events = driver.timeline.attributeAll(log.events);
    if (tracing.enabled) traceEgress(tracing, driver.timeline, log.events, sandbox.run);
    outcome = "ok";
    const serverInfo = driver.serverInfo;
    return { ok: true, run: { server: policy.name, ...(serverInfo ? { serverInfo } : {}), tools, ...(lists !== undefined ? { lists } : {}), calls, events, droppedEvents: log.dropped } };
  } finally {
    span.end(outcome, outcome === "ok" || outcome === "refused" ? undefined : outcome);
    await driver.close();
    await sandbox.stop();
    // A CLI verb exits right after: what the batch holds goes now.
    await tracing.flush().catch((err: unknown) => services.logger.warn({ err }, "exporting the run's traces failed"));
  }
}

/** Each event as a span under the scenario call it belongs to (a close under its decide's call). */
function traceEgress(tracing: Tracing, timeline: CallTimeline, events: readonly EgressEvent[], run: string): void {
  const decided = new Map<string, readonly number[]>();
  for (const event of events) {
    const at = timestampMs(event.ts);
    const handles = event.phase === "close" ? (decided.get(event.id) ?? (at === undefined ? [] : timeline.callsAt(at))) : at === undefined ? [] : timeline.callsAt(at);
    if (event.phase === "decide") decided.set(event.id, handles);
    tracing.egress(event, handles.map((h) => callKey(run, h)));
  }
}

const callKey = (run: string, handle: number): string => `scenario:${run}:${handle}`;

/** Rejects with the signal's reason once it aborts (never resolves otherwise). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
  });
}

/** The MCP side: one client over the sandbox's stdio, calls made one at a time. */
class ScenarioDriver {
  readonly timeline = new CallTimeline();
  private readonly client = new Client({ name: "hangar-scenario", version: "1.0.0" });
  private closed = false;
  private lastEndedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly sandbox: StartedSandbox,
    private readonly options: { readonly timeoutMs: number; readonly now: () => number; readonly say: (line: string) => void; readonly span: ScenarioSpan },
  ) {
    this.client.onclose = () => (this.closed = true);
  }

  get serverInfo(): { name: string; version: string } | undefined {
    const info = this.client.getServerVersion();
    return info === undefined ? undefined : { name: info.name, version: info.version };
  }

  async connect(): Promise<Tool[]> {
    const timeout = { timeout: this.options.timeoutMs };
    await this.guard("the MCP initialize", () => this.client.connect(new StreamClientTransport(this.sandbox.stdout, this.sandbox.stdin), timeout));
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.guard("tools/list", () => this.client.listTools(cursor === undefined ? {} : { cursor }, timeout));
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined && tools.length < 10_000);
    const info = this.serverInfo;
    const who = info === undefined ? "the server" : `${info.name} ${info.version}`;
    this.options.say(`connected over MCP: ${who} offers ${tools.length} tool${tools.length === 1 ? "" : "s"}`);
    return tools;
  }

  /** prompts/list, resources/list and resources/templates/list, each only when the server advertises it; bounded like tools/list. */
  async listOthers(): Promise<NonNullable<ScenarioRun["lists"]>> {
    const caps = this.client.getServerCapabilities() ?? {};
    const timeout = { timeout: this.options.timeoutMs };
    const pages = async <T>(what: string, page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>): Promise<T[]> => {
      const out: T[] = [];
      let cursor: string | undefined;
      do {
        const result = await this.guard(what, () => page(cursor));
        out.push(...result.items);
        cursor = result.nextCursor;
      } while (cursor !== undefined && out.length < 10_000);
      return out;
    };
    const params = (cursor: string | undefined): { cursor?: string } => (cursor === undefined ? {} : { cursor });
    const prompts =
      caps.prompts !== undefined ? await pages("prompts/list", async (c) => this.client.listPrompts(params(c), timeout).then((r) => ({ items: r.prompts, nextCursor: r.nextCursor }))) : [];
    const resources =
      caps.resources !== undefined ? await pages("resources/list", async (c) => this.client.listResources(params(c), timeout).then((r) => ({ items: r.resources, nextCursor: r.nextCursor }))) : [];
    const resourceTemplates =
      caps.resources !== undefined
        ? await pages("resources/templates/list", async (c) => this.client.listResourceTemplates(params(c), timeout).then((r) => ({ items: r.resourceTemplates, nextCursor: r.nextCursor })))
        : [];
    this.options.say(`listed ${prompts.length} prompts, ${resources.length} resources and ${resourceTemplates.length} resource templates`);
    return { prompts, resources, resourceTemplates };
  }

  async call(call: PlannedCall): Promise<CallRecord> {
    if (this.closed) throw await this.gone(`the call to ${call.tool}`);
    // Event timestamps have millisecond resolution: a call that begins in the millisecond the
    // previous one ended would share that millisecond's events with it.
    while (this.options.now() <= this.lastEndedAt) await new Promise((r) => setTimeout(r, 1));
    const startedAt = this.options.now();
    const handle = this.timeline.begin(call.tool, startedAt);
    const span = this.options.span.call(callKey(this.sandbox.run, handle), call.tool, { "hangar.scenario.index": call.index, "hangar.scenario.repetition": call.repetition });
    let outcome: CallOutcome = "ok";
    let detail: string | undefined;
    try {
      const result = await this.client.callTool({ name: call.tool, arguments: { ...call.arguments } }, undefined, { timeout: this.options.timeoutMs });
      if (result.isError === true) {
        outcome = "tool-error";
        detail = textOf(result.content);
      }
    } catch (err) {
      if (this.closed) {
        span.end("server-gone", "server-gone");
        throw await this.gone(`the call to ${call.tool}`);
      }
      outcome = err instanceof McpError && err.code === (ErrorCode.RequestTimeout as number) ? "timeout" : "protocol-error";
      detail = clip(err instanceof Error ? err.message : String(err));
    }
    const endedAt = this.options.now();
    this.timeline.end(handle, endedAt);
    // The outcome, never the tool's text (it may echo the arguments).
    span.end(outcome, outcome === "ok" ? undefined : outcome);
    this.lastEndedAt = endedAt;
    return { tool: call.tool, arguments: call.arguments, index: call.index, repetition: call.repetition, startedAt, endedAt, outcome, ...(detail !== undefined ? { detail } : {}) };
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }

  private async guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (this.closed) throw await this.gone(what);
      throw new HangarError("HANGAR_GATEWAY_UPSTREAM", `${this.sandbox.server}: ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** The server went away: say so with its exit code, once the container has reported one. */
  private async gone(what: string): Promise<HangarError> {
    const code = await Promise.race([this.sandbox.serverExit.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
    const how = code === undefined ? "closed its stdio" : `exited with code ${code}`;
    return new HangarError("HANGAR_GATEWAY_UPSTREAM", `${this.sandbox.server} ${how} during ${what}; its stderr above may say why`, { data: { exitCode: code } });
  }
}

function textOf(content: unknown): string | undefined {
  if (!Array.isArray(content)) return undefined;
  const text = content
    .map((c: unknown) => (c !== null && typeof c === "object" && (c as { type?: unknown }).type === "text" ? String((c as { text?: unknown }).text ?? "") : ""))
    .filter((t) => t.length > 0)
    .join(" ");
  return text.length > 0 ? clip(text) : undefined;
}

function clip(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL)}…` : line;
}
