import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Progress, Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { InFlightCalls } from "../core/audit/attribution.js";
import type { ToolCallOutcome } from "../core/audit/audit-record.js";
import { toolCallEntry } from "../core/audit/entries.js";
import { HangarError, isHangarError } from "../core/errors.js";
import { describeApprovalCheck } from "../core/gateway/approvals.js";
import { checkArgumentRules, declaredHostCheck, withoutViolatingValues } from "../core/gateway/argument-rules.js";
import { scanArguments } from "../core/gateway/argument-scan.js";
import { decideResult } from "../core/gateway/result-scan.js";
import { labelsOf, type FlowTracker } from "../core/gateway/flow-tracker.js";
import { exposedResourceUri, parseResourceUri, serverOf } from "../core/gateway/namespacing.js";
import type { Rbac } from "../core/gateway/rbac.js";
import { decideToolRule } from "../core/gateway/tool-rules.js";
import { NO_TRACING, type CallSpan, type IncomingTraceContext, type Tracing } from "../telemetry/tracing.js";
import type { AuditWriter } from "./audit-writer.js";
import type { FleetStatus } from "./fleet-status.js";
import type { GatewayMetrics } from "./gateway-metrics.js";
import type { GovernedServer } from "./governed-server.js";
import type { UpstreamResult } from "./upstream-client.js";
import { argumentRefusal, argumentRuleRefusal, flowRefusal, resultRefusal, toolRuleRefusal } from "./tool-refusals.js";
import { classifyUpstreamError, errorMessage } from "./upstream-errors.js";

/**
 * The governed endpoint's logic, independent of the transport: one catalogue over every
 * configured server, each call checked (RBAC, the server's tool rules, its rate limit,
 * its approval and manifest), routed, attributed and audited. Transports (stdio, HTTP)
 * adapt it with an MCP Server per session (see mcp-endpoint.ts).
 */
export interface Caller {
  readonly identity: string;
  readonly session?: string;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  readonly onprogress?: (progress: Progress) => void;
  /** The client's trace context (`_meta.traceparent`), which the call's span continues. */
  readonly trace?: IncomingTraceContext;
}

export interface GatewayDeps {
  readonly servers: readonly GovernedServer[];
  readonly rbac: Rbac;
  readonly audit: AuditWriter;
  readonly metrics: GatewayMetrics;
  readonly inFlight: InFlightCalls;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly newCallId?: () => string;
  /** Spans for calls and the egress they cause; default none. */
  readonly tracing?: Tracing;
  /** hangar.yaml's `flows:` over each client session; absent or without rules: no flow checks. */
  readonly flows?: FlowTracker;
}

export class Gateway {
  private readonly servers: ReadonlyMap<string, GovernedServer>;
  /** Every configured server's secret values: none of them may travel in any tool's arguments. */
  private readonly watched: readonly string[];
  private readonly listeners = new Set<() => void>();
  /** Per server: whether its egress declares a host, for tools.arguments `host: declared`. */
  private readonly hostChecks = new Map<string, (host: string) => boolean>();
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.servers = new Map(deps.servers.map((s) => [s.name, s]));
    this.watched = [...new Set(deps.servers.flatMap((s) => s.secretValues))];
  }

  get serverNames(): string[] {
    return [...this.servers.keys()];
  }

  server(name: string): GovernedServer | undefined {
    return this.servers.get(name);
  }

  /** Hears that the lists changed (sessions forward it as list_changed). Returns the unsubscribe function. */
  onListChanged(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notifyListChanged(): void {
    for (const listener of [...this.listeners]) listener();
  }

  async listTools(caller: Caller): Promise<Tool[]> {
    const servers = await this.listableServers();
    return servers.flatMap((s) => s.exposedTools().filter((t) => this.deps.rbac.allows(caller.identity, t.name)));
  }

  async listPrompts(caller: Caller): Promise<Prompt[]> {
    const servers = await this.listableServers();
    return servers.flatMap((s) => s.exposedPrompts().filter((p) => this.deps.rbac.allows(caller.identity, p.name)));
  }

  async listResources(caller: Caller): Promise<Resource[]> {
    const servers = await this.listableServers();
    return servers.flatMap((s) => s.exposedResources().filter((r) => this.deps.rbac.allows(caller.identity, resourcePermission(r.uri))));
  }

  async listResourceTemplates(caller: Caller): Promise<ResourceTemplate[]> {
    const servers = await this.listableServers();
    return servers.flatMap((s) => s.exposedResourceTemplates().filter((t) => this.deps.rbac.allows(caller.identity, resourcePermission(t.uriTemplate))));
  }

  async callTool(caller: Caller, name: string, args: Record<string, unknown> | undefined, options: RequestOptions = {}): Promise<UpstreamResult> {
    const callId = this.deps.newCallId?.() ?? randomUUID();
    // Arguments never go on the span: only who called what, and what each check decided.
    const span = (this.deps.tracing ?? NO_TRACING).toolCall({ callId, exposed: name, identity: caller.identity, ...(caller.session !== undefined ? { session: caller.session } : {}), ...(options.trace !== undefined ? { parent: options.trace } : {}) });
    let call: PendingCall = { callId, caller, exposed: name, args, startedAt: this.deps.now(), span };
    const server = this.servers.get(serverOf(name) ?? "");
    if (server === undefined) throw this.refuse(call, undefined, undefined, "denied", unknown("tool", name));

    const access = this.deps.rbac.decide(caller.identity, name);
    if (span.recording) span.set({ "hangar.server": server.name, "hangar.mode": server.mode, "hangar.rbac.verdict": access.allowed ? "allow" : "deny", ...(access.allowed ? { "hangar.rbac.role": access.role } : {}) });
    if (!access.allowed) throw this.refuse(call, server, server.resolveTool(name)?.name, "denied", new HangarError("HANGAR_GATEWAY_DENIED", access.message, { data: { permission: access.permission, identity: caller.identity, roles: [...access.roles] } }));

    if (!server.hasManifest) {
      try {
        await server.ensureManifest();
      } catch (err) {
        throw this.refuse(call, server, undefined, "unavailable", err);
      }
    }
    const tool = server.resolveTool(name)?.name;
    if (tool === undefined) throw this.refuse(call, server, undefined, "denied", unknown("tool", name));
    const rule = decideToolRule(server.name, server.policy.tools, tool);
    if (span.recording) span.set({ "hangar.tool": tool, "hangar.tool_rule.verdict": rule.allowed ? "allow" : "deny", "hangar.approval": server.approval().status });
    if (!rule.allowed) throw this.refuse(call, server, tool, "denied", toolRuleRefusal(server.name, tool, rule));
    const scanned = scanArguments(args, { watched: this.watched });
    if (scanned.findings.length > 0) {
      // From here on the audit sees the arguments with the flagged values cut out.
      call = { ...call, args: scanned.redacted as Record<string, unknown>, redact: scanned.flaggedValues };
      const refusal = argumentRefusal(server.name, tool, scanned.findings, server.mode);
      const verdict = server.mode === "enforcing" ? "block" : "would-block";
      if (span.recording) span.set({ "hangar.arguments.verdict": verdict, "hangar.arguments.detectors": [...new Set(scanned.findings.map((f) => f.detector))] });
      this.deps.audit.write({
        kind: "policy",
        data: {
          action: "argument-secret",
          server: server.name,
          tool,
          identity: caller.identity,
          detail: {
            callId: call.callId,
            ...(caller.session !== undefined ? { session: caller.session } : {}),
            detectors: [...new Set(scanned.findings.map((f) => f.detector))],
            findings: scanned.findings.map((f) => ({ detector: f.detector, path: f.path, encoding: f.encoding })),
            verdict,
            mode: server.mode,
          },
        },
      });
      if (verdict === "block") throw this.refuse(call, server, tool, "denied", refusal);
      this.deps.logger.warn({ server: server.name, tool, detectors: refusal.data["detectors"] }, "tool-call arguments carry a credential (OBSERVING: forwarded, recorded as would-block)");
    }
    const ruled = this.checkArgumentRules(call, server, tool);
    call = ruled.call;
    if (ruled.refusal !== undefined) throw this.refuse(call, server, tool, "denied", ruled.refusal);
    const flows = this.checkFlows(call, server, tool);
    if (flows.refusal !== undefined && span.recording) span.set({ "hangar.flow.verdict": "deny" });
    if (flows.refusal !== undefined) throw this.refuse(call, server, tool, "denied", flows.refusal);
    const rate = server.takeRate();
    if (span.recording) span.set({ "hangar.rate_limit.verdict": rate === undefined ? "allow" : "deny", ...(scanned.findings.length === 0 ? { "hangar.arguments.verdict": "clean" } : {}) });
    if (rate !== undefined) throw this.refuse(call, server, tool, "denied", rate);
    // Recorded in the same tick as the check: a concurrent call is decided after this one.
    flows.admit();

    const inFlight = this.deps.inFlight;
    inFlight.begin({ callId: call.callId, server: server.name, tool, identity: caller.identity, ...(caller.session !== undefined ? { session: caller.session } : {}), startedAt: call.startedAt });
    let reached = false;
    let withheldResult: HangarError | undefined;
    try {
      const result = await server.supervisor.run(
        async (client) => {
          // Checked again on the live manifest: a start may just have revealed a rug pull.
          const withheld = server.resolveTool(name) === undefined ? `tool ${JSON.stringify(tool)} is no longer offered by server ${JSON.stringify(server.name)}` : server.withheldReason(tool);
          if (withheld !== undefined) {
            const findings = server.scanFindings(tool).map((f) => ({ code: f.code, path: f.path, cue: f.cue }));
            throw new HangarError("HANGAR_GATEWAY_WITHHELD", withheld, { data: { server: server.name, tool, ...(findings.length > 0 ? { findings } : {}) } });
          }
          reached = true;
          return client.callTool(tool, args, { timeoutMs: this.deps.callTimeoutMs, ...options });
        },
        options.signal !== undefined ? { signal: options.signal } : {},
      );
      withheldResult = this.screenResult(call, server, tool, result);
      if (withheldResult === undefined) {
        this.record(call, server, tool, result.isError === true ? "error" : "ok", { result });
        return result;
      }
    } catch (err) {
      const outcome = outcomeOf(err, options.signal, reached);
      this.record(call, server, tool, outcome, { error: errorMessage(err), errorCode: errorCode(err), reached });
      throw err;
    } finally {
      inFlight.end(call.callId, this.deps.now());
    }
    // The server ran the call; its result never reaches the client.
    this.record(call, server, tool, "denied", { error: withheldResult.message, reached: true });
    throw withheldResult;
  }

  async getPrompt(caller: Caller, name: string, args: Record<string, string> | undefined, options: RequestOptions = {}): Promise<UpstreamResult> {
    const server = this.servers.get(serverOf(name) ?? "");
    if (server === undefined) throw unknown("prompt", name);
    this.authorizeOther(caller, server.name, name, "prompt");
    assertListable(server);
    if (!server.hasManifest) await server.ensureManifest();
    const prompt = server.resolvePrompt(name);
    if (prompt === undefined) throw unknown("prompt", name);
    // Checked on the live lists, after a start that may just have revealed a changed prompt.
    return server.supervisor.run(
      async (client) => {
        const withheld = server.withheldSurface("prompt", prompt.name);
        if (withheld !== undefined) throw withheld;
        return client.getPrompt(prompt.name, args, { timeoutMs: this.deps.callTimeoutMs, ...options });
      },
      options.signal !== undefined ? { signal: options.signal } : {},
    );
  }

  async readResource(caller: Caller, uri: string, options: RequestOptions = {}): Promise<UpstreamResult> {
    const parsed = parseResourceUri(uri);
    const server = parsed !== undefined ? this.servers.get(parsed.server) : undefined;
    if (parsed === undefined || server === undefined) throw unknown("resource", uri);
    this.authorizeOther(caller, server.name, resourcePermission(uri), "resource");
    assertListable(server);
    // Checked on the live lists, after a start that may just have revealed a changed resource.
    const result = await server.supervisor.run(
      async (client) => {
        const withheld = server.withheldSurface("resource", parsed.uri);
        if (withheld !== undefined) throw withheld;
        return client.readResource(parsed.uri, { timeoutMs: this.deps.callTimeoutMs, ...options });
      },
      options.signal !== undefined ? { signal: options.signal } : {},
    );
    // Contents name their own URIs; clients must be able to read them back through us.
    const contents = Array.isArray(result["contents"]) ? (result["contents"] as { uri?: unknown }[]) : [];
    return { ...result, contents: contents.map((c) => (typeof c.uri === "string" ? { ...c, uri: exposedResourceUri(server.name, c.uri) } : c)) };
  }

  status(base: Omit<FleetStatus, "servers" | "updatedAt">): FleetStatus {
    const now = this.deps.now();
    return { ...base, updatedAt: new Date(now).toISOString(), servers: [...this.servers.values()].map((s) => s.status(now)) };
  }

  /** Stops every server (DEAD) and flushes the audit. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.servers.values()].map((s) => s.close().catch((err: unknown) => this.deps.logger.warn({ err, server: s.name }, "closing a server failed"))));
      this.deps.audit.flush();
    })();
    return this.closing;
  }

  /** Servers whose lists clients may see, started first when nothing about them is known. */
  private async listableServers(): Promise<GovernedServer[]> {
    const servers = [...this.servers.values()].filter((s) => s.listable());
    await Promise.all(
      servers
        .filter((s) => !s.hasManifest)
        .map((s) => s.ensureManifest().catch((err: unknown) => this.deps.logger.warn({ server: s.name, err: errorMessage(err) }, "cannot list a server that never started; its tools are left out"))),
    );
    return servers;
  }

  private authorizeOther(caller: Caller, server: string, permission: string, what: "prompt" | "resource"): void {
    const access = this.deps.rbac.decide(caller.identity, permission);
    if (access.allowed) return;
    this.deps.audit.write({ kind: "policy", data: { action: `${what}-denied`, server, tool: permission, identity: caller.identity, detail: { message: access.message, ...(caller.session !== undefined ? { session: caller.session } : {}) } } });
    throw new HangarError("HANGAR_GATEWAY_DENIED", access.message, { data: { permission: access.permission, identity: caller.identity } });
  }

  /** The client session ended: what the flow rules remembered of it goes. */
  sessionEnded(caller: Caller): void {
    this.deps.flows?.endSession(flowSession(caller));
  }

  private declaredHosts(server: GovernedServer): (host: string) => boolean {
    let check = this.hostChecks.get(server.name);
    if (check === undefined) {
      check = declaredHostCheck(server.policy);
      this.hostChecks.set(server.name, check);
    }
    return check;
  }

  /**
   * The result scanned for injection cues (tools.results, default "flag"): findings audited;
   * under "strict" a refusal to throw instead of the result (ENFORCING).
   */
  private screenResult(call: PendingCall, server: GovernedServer, tool: string, result: UpstreamResult): HangarError | undefined {
    const policy = server.policy.tools.results ?? "flag";
    const decided = decideResult(result, policy, server.mode);
    if (decided === undefined) return undefined;
    const { verdict, findings } = decided;
    this.deps.audit.write({
      kind: "policy",
      data: {
        action: "result-injection",
        server: server.name,
        tool,
        identity: call.caller.identity,
        detail: {
          callId: call.callId,
          ...(call.caller.session !== undefined ? { session: call.caller.session } : {}),
          findings: findings.map((f) => ({ code: f.code, severity: f.severity, path: f.path, cue: f.cue })),
          results: policy,
          verdict,
          mode: server.mode,
        },
      },
    });
    if (verdict === "block") return resultRefusal(server.name, tool, findings);
    this.deps.logger.warn({ server: server.name, tool, cues: findings.map((f) => f.cue), verdict }, "tool result carries injection cues");
    return undefined;
  }

  /**
   * The policy's tools.arguments rules over this call: violations audited by rule and path
   * (the values cut out of the audited arguments), refused when ENFORCING.
   */
  private checkArgumentRules(call: PendingCall, server: GovernedServer, tool: string): { call: PendingCall; refusal?: HangarError } {
    const rules = server.policy.tools.arguments;
    if (rules === undefined || rules.length === 0) return { call };
    const violations = checkArgumentRules(rules, tool, call.args ?? {}, { declaredHost: this.declaredHosts(server) });
    if (violations.length === 0) return { call };
    const verdict = server.mode === "enforcing" ? "block" : "would-block";
    this.deps.audit.write({
      kind: "policy",
      data: {
        action: "argument-rule",
        server: server.name,
        tool,
        identity: call.caller.identity,
        detail: {
          callId: call.callId,
          ...(call.caller.session !== undefined ? { session: call.caller.session } : {}),
          violations: violations.map((v) => ({ rule: v.rule, path: v.path, reason: v.reason })),
          verdict,
          mode: server.mode,
        },
      },
    });
    const redacted = { ...call, args: withoutViolatingValues(call.args ?? {}, violations) as Record<string, unknown> };
    if (verdict === "block") return { call: redacted, refusal: argumentRuleRefusal(server.name, tool, violations, server.mode) };
    this.deps.logger.warn({ server: server.name, tool, rules: violations.map((v) => v.rule) }, "tool-call arguments break the policy's tools.arguments rules (OBSERVING: forwarded, recorded as would-block)");
    return { call };
  }

  /**
   * The flows this call would complete in its session, each audited with the chain of calls
   * that led to it; a refusal when one is decided ENFORCING. `admit` records the call as let
   * through (labelled calls only).
   */
  private checkFlows(call: PendingCall, server: GovernedServer, tool: string): { refusal?: HangarError; admit: () => void } {
    const tracker = this.deps.flows;
    if (tracker === undefined || !tracker.active) return { admit: () => undefined };
    const labels = labelsOf(server.policy.tools.labels, tool);
    if (labels.length === 0) return { admit: () => undefined };
    const session = flowSession(call.caller);
    const now = this.deps.now();
    const violations = tracker.check(session, labels, server.mode, now);
    for (const v of violations) {
      const verdict = v.mode === "enforcing" ? "block" : "would-block";
      this.deps.audit.write({
        kind: "policy",
        data: {
          action: "flow-denied",
          server: server.name,
          tool,
          identity: call.caller.identity,
          detail: {
            callId: call.callId,
            session,
            flow: v.flow,
            labels: [...v.labels],
            chain: v.chain.map((c) => ({ callId: c.callId, server: c.server, tool: c.tool, labels: [...c.labels], at: new Date(c.at).toISOString() })),
            verdict,
            mode: v.mode,
          },
        },
      });
      if (verdict === "would-block") this.deps.logger.warn({ server: server.name, tool, flow: v.flow, session }, "tool call completes a denied flow (OBSERVING: forwarded, recorded as would-block)");
    }
    const enforced = violations.filter((v) => v.mode === "enforcing");
    if (enforced.length > 0) return { refusal: flowRefusal(server.name, tool, enforced), admit: () => undefined };
    return { admit: () => tracker.record(session, { callId: call.callId, server: server.name, tool, labels, at: now }) };
  }

  /** Audits a call refused before it reached the server and returns the error to throw. */
  private refuse(call: PendingCall, server: GovernedServer | undefined, tool: string | undefined, outcome: ToolCallOutcome, err: unknown): unknown {
    this.record(call, server, tool, outcome, { error: errorMessage(err), errorCode: errorCode(err), reached: false });
    return err;
  }

  /**
   * `tool` is the upstream name, undefined when the exposed name resolved to none. The audit
   * record is built (redaction, result summary) when its batch is appended, after the answer
   * went out: what it is built from is fixed here, and neither the arguments nor the result
   * are changed after the call.
   */
  private record(call: PendingCall, server: GovernedServer | undefined, tool: string | undefined, outcome: ToolCallOutcome, extra: { result?: unknown; error?: string; errorCode?: string; reached?: boolean }): void {
    const endedAt = this.deps.now();
    const serverName = server?.name ?? serverOf(call.exposed) ?? "";
    const secretValues = call.redact === undefined ? (server?.secretValues ?? []) : [...(server?.secretValues ?? []), ...call.redact];
    this.deps.audit.writeDeferred(() =>
      toolCallEntry(
        {
          callId: call.callId,
          identity: call.caller.identity,
          ...(call.caller.session !== undefined ? { session: call.caller.session } : {}),
          server: serverName,
          tool: tool ?? call.exposed,
          arguments: call.args ?? {},
          ...(extra.result !== undefined ? { result: extra.result } : {}),
          durationMs: endedAt - call.startedAt,
          outcome,
          ...(extra.error !== undefined ? { error: extra.error } : {}),
          ts: new Date(endedAt).toISOString(),
        },
        { secretValues },
      ),
    );
    const reached = extra.result !== undefined || extra.reached === true;
    if (call.span.recording) call.span.set({ "hangar.reached": reached });
    call.span.end(outcome, outcome === "ok" ? undefined : (extra.errorCode ?? outcome));
    this.deps.metrics.toolCall(serverName, tool ?? "(unknown)", outcome, reached ? (endedAt - call.startedAt) / 1000 : undefined);
    server?.countCall(outcome, extra.error);
  }
}

interface PendingCall {
  readonly callId: string;
  readonly caller: Caller;
  readonly exposed: string;
  readonly args: Record<string, unknown> | undefined;
  readonly startedAt: number;
  /** Flagged argument values, cut out of the result and error the audit keeps. */
  readonly redact?: readonly string[];
  readonly span: CallSpan;
}

/** Flow state is per MCP session; a caller without one (none today) is tracked per identity. */
function flowSession(caller: Caller): string {
  return caller.session ?? `identity:${caller.identity}`;
}

export function resourcePermission(exposedUri: string): string {
  const parsed = parseResourceUri(exposedUri);
  return parsed === undefined ? exposedUri : `${parsed.server}__${parsed.uri}`;
}

/** Prompts and resources of a server that may not run are refused the way its tools are. */
function assertListable(server: GovernedServer): void {
  if (server.listable()) return;
  const check = server.approval();
  throw new HangarError("HANGAR_GATEWAY_NOT_APPROVED", describeApprovalCheck(server.name, check), { data: { server: server.name, approval: check.status } });
}

function unknown(what: "tool" | "prompt" | "resource", name: string): HangarError {
  return new HangarError("HANGAR_GATEWAY_UNKNOWN", `no configured server offers ${what} ${JSON.stringify(name)}`, { data: { [what]: name } });
}

/** A span's status message: our stable code, never the text (which may echo what the server said). */
function errorCode(err: unknown): string | undefined {
  if (isHangarError(err)) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" || typeof code === "string" ? `MCP ${code}` : undefined;
}

function outcomeOf(err: unknown, signal: AbortSignal | undefined, reached: boolean): ToolCallOutcome {
  if (isHangarError(err, "HANGAR_GATEWAY_WITHHELD")) return "withheld";
  if (!reached && isHangarError(err) && ["HANGAR_GATEWAY_UNAVAILABLE", "HANGAR_GATEWAY_NOT_APPROVED", "HANGAR_GATEWAY_LAUNCH_FAILED", "HANGAR_CLOSED"].includes(err.code)) return "unavailable";
  const kind = classifyUpstreamError(err, signal);
  return kind === "timeout" ? "timeout" : kind === "cancelled" ? "cancelled" : "error";
}
