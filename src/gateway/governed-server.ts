import type { Logger } from "pino";
import type { Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import { UriTemplate } from "@modelcontextprotocol/sdk/shared/uriTemplate.js";
import type { InFlightCalls } from "../core/audit/attribution.js";
import type { ToolCallOutcome } from "../core/audit/audit-record.js";
import type { JsonObject } from "../core/audit/canonical-json.js";
import { egressEntry } from "../core/audit/entries.js";
import { HangarError } from "../core/errors.js";
import type { EgressEvent } from "../core/events.js";
import { describeApprovalCheck, type ApprovalCheck } from "../core/gateway/approvals.js";
import type { BreakerState } from "../core/gateway/circuit-breaker.js";
import type { StateChange } from "../core/gateway/lifecycle.js";
import { describeDrift } from "../core/gateway/manifest-drift.js";
import { pinManifest, pinnedSurfaces, surfaceKey } from "../core/gateway/manifest-digest.js";
import type { ManifestFinding } from "../core/gateway/manifest-scan.js";
import { RateLimiter } from "../core/gateway/rate-limiter.js";
import { runPins, type RunPins } from "../core/gateway/source-pins.js";
import { decideToolRule } from "../core/gateway/tool-rules.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import type { Tracing } from "../telemetry/tracing.js";
import type { ApprovalGate } from "./approval-gate.js";
import type { AuditWriter } from "./audit-writer.js";
import { emptyCallCounts, emptyEgressCounts, type ServerStatus } from "./fleet-status.js";
import type { GatewayMetrics } from "./gateway-metrics.js";
import type { ManifestCache } from "./manifest-cache.js";
import { buildManifestView, viewFingerprint, type ManifestView } from "./manifest-view.js";
import type { LaunchOptions, ServerLauncher, UpstreamEvent } from "./server-launcher.js";
import { ServerSupervisor, type SupervisorSnapshot } from "./server-supervisor.js";
import type { SupervisorSettings } from "./supervisor-settings.js";
import { rateLimitRefusal } from "./tool-refusals.js";
import type { UpstreamManifest } from "./upstream-client.js";

/**
 * One configured server under governance: its supervisor (lifecycle), its approval gate,
 * its manifest as clients see it (namespaced, drift-checked), its rate limit, and the
 * audit and metrics of everything that happens to it.
 */
export interface GovernedServerDeps {
  readonly policy: Policy;
  readonly policyFile: string;
  readonly launcher: ServerLauncher;
  readonly launchOptions: Omit<LaunchOptions, "signal" | "policyFile" | "mode">;
  readonly settings: SupervisorSettings;
  readonly gate: ApprovalGate;
  readonly audit: AuditWriter;
  readonly manifests: ManifestCache;
  readonly metrics: GatewayMetrics;
  readonly inFlight: InFlightCalls;
  readonly cached?: UpstreamManifest;
  /** The other configured servers, whose tools the manifest scan checks this server's against. */
  readonly peers?: () => readonly PeerServer[];
  /** Called when what clients would list changed (a start, a drift, a list_changed). */
  readonly onListChanged: () => void;
  readonly logger: Logger;
  readonly now: () => number;
  readonly version: string;
  readonly random?: () => number;
  /** Lifecycle spans, and egress spans under the calls they are attributed to; default none. */
  readonly tracing?: Tracing;
}

/** What the manifest scan needs to know of another configured server. */
export interface PeerServer {
  readonly name: string;
  /** Bumped whenever its manifest changes, so views built against it are rebuilt. */
  readonly manifestRevision: number;
  toolNames(): readonly string[];
  /** Tool name → digest of the tool (name, description, schema). */
  toolDigests(): Readonly<Record<string, string>>;
}

export class GovernedServer implements PeerServer {
  readonly name: string;
  readonly policy: Policy;
  readonly mode: Mode;
  readonly pins: RunPins;
  /** Secret values of this server, cut out of everything it puts in the audit log. */
  readonly secretValues: readonly string[];
  readonly supervisor: ServerSupervisor;
  private readonly limiter: RateLimiter | undefined;
  private manifest: UpstreamManifest | undefined;
  private revision = 0;
  private digests: { revision: number; tools: Readonly<Record<string, string>> } | undefined;
  private live = false;
  private view: { basis: string; view: ManifestView } | undefined;
  /** What the view was last checked against: the approval check and the peers' revisions (see currentView). */
  private viewChecked: { check: ApprovalCheck; peers: readonly PeerServer[] | undefined; peerRevisions: number } | undefined;
  private readonly reported = new Set<string>();
  private readonly calls = emptyCallCounts();
  private readonly egress = emptyEgressCounts();
  private lastCallError: { at: number; message: string } | undefined;

  constructor(private readonly deps: GovernedServerDeps) {
    this.policy = deps.policy;
    this.name = deps.policy.name;
    this.mode = deps.policy.egress.mode;
    this.pins = runPins(deps.policy);
    this.manifest = deps.cached;
    if (deps.cached !== undefined) this.revision = 1;
    const source = deps.launchOptions.secretSource;
    this.secretValues = deps.policy.server.secrets.map((n) => source[n] ?? "").filter((v) => v !== "");
    const perMinute = deps.policy.tools.rateLimit?.perMinute;
    this.limiter = perMinute !== undefined ? new RateLimiter(perMinute, deps.now()) : undefined;
    this.supervisor = new ServerSupervisor({
      policy: deps.policy,
      launcher: deps.launcher,
      launchOptions: { ...deps.launchOptions, policyFile: deps.policyFile, mode: this.mode },
      settings: deps.settings,
      logger: deps.logger,
      version: deps.version,
      now: deps.now,
      ...(deps.random !== undefined ? { random: deps.random } : {}),
      hooks: {
        beforeStart: () => this.beforeStart(),
        onManifest: (manifest) => this.onManifest(manifest),
        onStateChange: (change, snapshot) => this.onStateChange(change, snapshot),
        onBreakerChange: (state, snapshot) => this.onBreakerChange(state, snapshot),
        onEvent: (event) => this.onEvent(event),
      },
    });
    deps.metrics.serverState(this.name, "COLD");
  }

  approval(): ApprovalCheck {
    return this.deps.gate.check(this.name, this.pins);
  }

  /** Whether clients may see this server's lists at all: approved, or changed while OBSERVING. */
  listable(): boolean {
    const check = this.approval();
    return check.status === "approved" || (check.status === "changed" && this.mode === "observing");
  }

  get hasManifest(): boolean {
    return this.manifest !== undefined;
  }

  /** Starts the server when nothing about its lists is known yet (first run, no cache). */
  async ensureManifest(): Promise<void> {
    if (this.manifest === undefined) await this.supervisor.ensureStarted("first list");
  }

  get manifestRevision(): number {
    return this.revision;
  }

  toolNames(): readonly string[] {
    return this.manifest?.tools.map((t) => t.name) ?? [];
  }

  toolDigests(): Readonly<Record<string, string>> {
    if (this.digests?.revision !== this.revision) this.digests = { revision: this.revision, tools: this.manifest === undefined ? {} : pinManifest(this.manifest.tools).tools };
    return this.digests.tools;
  }

  currentView(): ManifestView | undefined {
    if (this.manifest === undefined) return undefined;
    const check = this.approval();
    // Every call asks (several times): unless the approval check (the gate hands out the same
    // object until it re-reads the approvals) or a peer's manifest moved, the view stands.
    // Revisions only grow, so their sum moves whenever one does.
    const fleet = this.deps.peers?.();
    let peerRevisions = 0;
    for (const p of fleet ?? []) peerRevisions += p.manifestRevision;
    const checked = this.viewChecked;
    if (this.view !== undefined && checked !== undefined && checked.check === check && checked.peers === fleet && checked.peerRevisions === peerRevisions) return this.view.view;
    this.viewChecked = { check, peers: fleet, peerRevisions };
    const approval = check.status === "unapproved" ? undefined : check.approval;
    const pinned = approval?.pins.manifest;
    const peers = (fleet ?? []).filter((p) => p.name !== this.name);
    // Rebuilt when the approval, its pin or its per-tool grants change, or a peer's tools do.
    const basis = `${approval?.id ?? "-"}:${pinned?.digest ?? "-"}:${JSON.stringify(approval?.grantedTools ?? {})}:${peers.map((p) => `${p.name}@${p.manifestRevision}`).join(",")}`;
    if (this.view === undefined || this.view.basis !== basis) {
      const view = buildManifestView(this.name, this.manifest, pinned, this.mode, {
        ...(approval !== undefined ? { approval } : {}),
        peers: peers.map((p) => ({ server: p.name, tools: p.toolNames(), digests: p.toolDigests() })),
      });
      this.view = { basis, view };
      this.reportDrift(view);
      if (approval !== undefined) this.reportFlags(view, approval.id);
    }
    return this.view.view;
  }

  /** The manifest scan's findings on `tool` (the server's own name for it). */
  scanFindings(tool: string): ManifestFinding[] {
    return this.currentView()?.scan.findings.filter((f) => f.tool === tool) ?? [];
  }

  /** The upstream tool behind an exposed name, if this server lists it. */
  resolveTool(exposed: string): Tool | undefined {
    return this.currentView()?.tools.get(exposed);
  }

  resolvePrompt(exposed: string): Prompt | undefined {
    return this.currentView()?.prompts.get(exposed);
  }

  /** Why `tool` may not be offered now, or undefined when it may. */
  withheldReason(tool: string): string | undefined {
    return this.currentView()?.withheld.get(tool);
  }

  exposedTools(): Tool[] {
    const view = this.currentView();
    if (view === undefined) return [];
    const out: Tool[] = [];
    for (const [exposed, tool] of view.tools) {
      // Tools the server's own policy refuses are not offered either.
      if (!view.withheld.has(tool.name) && decideToolRule(this.name, this.policy.tools, tool.name).allowed) out.push({ ...tool, name: exposed });
    }
    return out;
  }

  exposedPrompts(): Prompt[] {
    const view = this.currentView();
    return view === undefined ? [] : [...view.prompts].filter(([, prompt]) => !view.withheld.has(surfaceKey("prompt", prompt.name))).map(([exposed, prompt]) => ({ ...prompt, name: exposed }));
  }

  exposedResources(): Resource[] {
    const view = this.currentView();
    if (view === undefined) return [];
    return this.manifest === undefined ? [] : view.resources.filter((_, i) => !view.withheld.has(surfaceKey("resource", this.manifest?.resources[i]?.uri ?? "")));
  }

  exposedResourceTemplates(): ResourceTemplate[] {
    const view = this.currentView();
    if (view === undefined) return [];
    return view.resourceTemplates.filter((_, i) => !view.withheld.has(surfaceKey("resourceTemplate", this.manifest?.resourceTemplates[i]?.uriTemplate ?? "")));
  }

  /**
   * The refusal of a prompts/get (`prompt`: the server's own name) or a resources/read
   * (`resource`: the server's own URI) that ENFORCING withholds: changed since the pin, or
   * flagged by the scan and not granted. A URI is withheld when it is a withheld resource or
   * matches a withheld template. Audited once per item; undefined when it may be served.
   */
  withheldSurface(kind: "prompt" | "resource", name: string): HangarError | undefined {
    const view = this.currentView();
    if (view === undefined || view.withheld.size === 0) return undefined;
    let key = surfaceKey(kind, name);
    let reason = view.withheld.get(key);
    if (reason === undefined && kind === "resource") {
      for (const template of this.manifest?.resourceTemplates ?? []) {
        const templateKey = surfaceKey("resourceTemplate", template.uriTemplate);
        const why = view.withheld.get(templateKey);
        if (why !== undefined && matchesTemplate(template.uriTemplate, name)) {
          [key, reason] = [templateKey, why];
          break;
        }
      }
    }
    if (reason === undefined) return undefined;
    const findings = view.scan.findings.filter((f) => f.tool === key).map((f) => ({ code: f.code, path: f.path, cue: f.cue }));
    this.once(`withheld:${key}:${pinnedSurfaces(view.current)?.[key] ?? view.current.digest}`, () => this.policyRecord(`${kind}-withheld`, { item: key, reason, mode: this.mode, verdict: "withheld" }));
    return new HangarError("HANGAR_GATEWAY_WITHHELD", reason, { data: { server: this.name, [kind]: name, ...(findings.length > 0 ? { findings } : {}) } });
  }

  /** Takes one call from the rate limit; the refusal when it is used up. */
  takeRate(): HangarError | undefined {
    const decision = this.limiter?.tryTake(this.deps.now());
    if (decision === undefined || decision.allowed || this.limiter === undefined) return undefined;
    return rateLimitRefusal(this.name, this.limiter.perMinute, decision.retryAfterMs);
  }

  countCall(outcome: ToolCallOutcome, error: string | undefined): void {
    this.calls.total += 1;
    this.calls[outcome] += 1;
    if (error !== undefined && outcome !== "denied" && outcome !== "withheld") this.lastCallError = { at: this.deps.now(), message: error };
  }

  status(now: number): ServerStatus {
    const snap = this.supervisor.snapshot();
    const check = this.approval();
    const view = this.view?.view;
    const lastError = [snap.lastError, this.lastCallError].filter((e) => e !== undefined).sort((a, b) => b.at - a.at)[0];
    return {
      name: this.name,
      state: snap.state,
      since: new Date(snap.since).toISOString(),
      ...(snap.readySince !== undefined ? { uptimeMs: now - snap.readySince } : {}),
      mode: this.mode,
      approval: check.status,
      ...(check.status !== "unapproved" ? { approvalId: check.approval.id } : {}),
      ...(snap.upstream !== undefined ? { upstream: snap.upstream } : {}),
      calls: { ...this.calls },
      callsInFlight: snap.callsInFlight,
      ...(lastError !== undefined ? { lastError: { at: new Date(lastError.at).toISOString(), message: lastError.message } } : {}),
      egress: { ...this.egress },
      restarts: snap.restarts,
      breaker: snap.breaker,
      tools: view === undefined ? 0 : [...view.tools.values()].filter((t) => !view.withheld.has(t.name)).length,
      withheld: view === undefined ? [] : [...view.withheld.keys()].sort(),
      ...(view?.drift !== undefined ? { drift: { changed: view.drift.changed, added: view.drift.added, removed: view.drift.removed } } : {}),
    };
  }

  close(): Promise<void> {
    return this.supervisor.close();
  }

  private beforeStart(): void {
    const check = this.approval();
    if (check.status === "approved") return;
    if (check.status === "changed" && this.mode === "observing") {
      this.once(`changed:${check.approval.id}:${check.differences.join(";")}`, () =>
        this.policyRecord("approval-drift", { approvalId: check.approval.id, differences: [...check.differences], verdict: "flag", mode: this.mode }),
      );
      this.deps.logger.warn({ server: this.name, differences: check.differences }, "server changed since its approval (OBSERVING: starting anyway)");
      return;
    }
    const message = describeApprovalCheck(this.name, check);
    this.once(`refused:${message}`, () => this.policyRecord("start-refused", { reason: message, approval: check.status }));
    throw new HangarError("HANGAR_GATEWAY_NOT_APPROVED", message, { data: { server: this.name, approval: check.status } });
  }

  private onManifest(manifest: UpstreamManifest): void {
    const before = viewFingerprint(this.view?.view);
    this.manifest = manifest;
    this.revision += 1;
    this.live = true;
    this.view = undefined;
    const check = this.approval();
    if (check.status !== "unapproved" && check.approval.pins.manifest === undefined) {
      const view = buildManifestView(this.name, manifest, undefined, this.mode);
      this.deps.gate.pinManifest(check.approval, view.current, view.scan.flagged);
      this.deps.logger.info({ server: this.name, approval: check.approval.id, digest: view.current.digest }, "tool manifest pinned on first start");
    }
    const after = viewFingerprint(this.currentView());
    this.deps.manifests.write(this.name, manifest, new Date(this.deps.now()).toISOString()).catch((err: unknown) => this.deps.logger.warn({ err, server: this.name }, "cannot cache the manifest"));
    if (before !== after) this.deps.onListChanged();
  }

  private reportDrift(view: ManifestView): void {
    this.reportSurfaceDrift(view);
    const drift = view.drift;
    if (drift === undefined) return;
    this.once(`drift:${drift.pinnedDigest}:${drift.currentDigest}`, () => {
      const withheld = [...view.withheld.keys()].sort();
      this.policyRecord("manifest-drift", {
        pinnedDigest: drift.pinnedDigest,
        currentDigest: drift.currentDigest,
        changed: [...drift.changed],
        added: [...drift.added],
        removed: [...drift.removed],
        mode: this.mode,
        verdict: this.mode === "enforcing" ? "withheld" : "flag",
        withheld,
        source: this.live ? "server" : "cache",
      });
      this.deps.metrics.manifestDrift(this.name);
      this.deps.logger.warn({ server: this.name, changed: drift.changed, added: drift.added, mode: this.mode }, describeDrift(this.name, drift));
    });
  }

  /** Prompts, resources and templates that differ from the pin: audited once per change, like tools. */
  private reportSurfaceDrift(view: ManifestView): void {
    const drift = view.surfaceDrift;
    if (drift === undefined) return;
    const withheld = [...drift.changed, ...drift.added].filter((k) => view.withheld.has(k));
    this.once(`surface-drift:${JSON.stringify(drift)}`, () => {
      this.policyRecord("manifest-drift", {
        surfaces: { changed: [...drift.changed], added: [...drift.added], removed: [...drift.removed] },
        mode: this.mode,
        verdict: this.mode === "enforcing" ? "withheld" : "flag",
        withheld,
        source: this.live ? "server" : "cache",
      });
      this.deps.metrics.manifestDrift(this.name);
      this.deps.logger.warn({ server: this.name, ...drift, mode: this.mode }, `the prompts or resources of server ${JSON.stringify(this.name)} differ from its approval`);
    });
  }

  /** Audits, once per manifest and grant, which tools the scan flagged and what became of them. */
  private reportFlags(view: ManifestView, approvalId: string): void {
    if (view.scan.flagged.length === 0) return;
    const withheld = view.ungranted.filter((t) => view.withheld.has(t));
    this.once(`flagged:${approvalId}:${view.current.digest}:${view.ungranted.join(",")}`, () => {
      const findings: JsonObject = {};
      for (const tool of view.scan.flagged) findings[tool] = [...new Set(view.scan.findings.filter((f) => f.tool === tool).map((f) => `${f.code} ${f.path} ${f.cue}`))];
      this.policyRecord("manifest-flagged", {
        approvalId,
        digest: view.current.digest,
        findings,
        granted: view.scan.flagged.filter((t) => !view.ungranted.includes(t)),
        ungranted: [...view.ungranted],
        withheld,
        mode: this.mode,
        verdict: view.ungranted.length === 0 ? "granted" : this.mode === "enforcing" ? "withheld" : "flag",
        source: this.live ? "server" : "cache",
      });
      if (view.ungranted.length > 0) this.deps.logger.warn({ server: this.name, ungranted: view.ungranted, mode: this.mode }, "the manifest scan flagged tools that no grant names");
    });
  }

  private onStateChange(change: StateChange, snapshot: SupervisorSnapshot): void {
    const action = change.to === "COLD" ? "idle-stopped" : change.to === "STARTING" && change.from === "DEGRADED" ? "restarting" : change.to.toLowerCase();
    if (action === "restarting") this.deps.metrics.restarted(this.name);
    this.deps.metrics.serverState(this.name, change.to);
    const detail: JsonObject = { from: change.from, reason: change.reason, restarts: snapshot.restarts };
    if (snapshot.upstream !== undefined) detail["upstream"] = snapshot.upstream;
    if (change.to === "READY" && !this.deps.launcher.sandboxed) detail["sandboxed"] = false;
    if (snapshot.lastError !== undefined && (change.to === "DEGRADED" || change.to === "DEAD")) detail["lastError"] = snapshot.lastError.message;
    this.deps.audit.write({ kind: "lifecycle", data: { server: this.name, action, state: change.to, detail } });
    this.deps.tracing?.lifecycle({
      server: this.name,
      from: change.from,
      to: change.to,
      reason: change.reason,
      restarts: snapshot.restarts,
      ...(snapshot.upstream !== undefined ? { upstream: snapshot.upstream } : {}),
      ...(snapshot.lastError !== undefined && (change.to === "DEGRADED" || change.to === "DEAD") ? { lastError: snapshot.lastError.message } : {}),
    });
  }

  private onBreakerChange(state: BreakerState, snapshot: SupervisorSnapshot): void {
    this.deps.metrics.breaker(this.name, state === "open");
    this.deps.audit.write({
      kind: "lifecycle",
      data: { server: this.name, action: `breaker-${state}`, detail: { failures: snapshot.consecutiveFailures, ...(snapshot.lastError !== undefined ? { lastError: snapshot.lastError.message } : {}) } },
    });
  }

  private onEvent(event: UpstreamEvent): void {
    if (event.type === "egress" || event.type === "dns") {
      const at = Date.parse(event.ts);
      const calls = this.deps.inFlight.attribute(this.name, Number.isFinite(at) ? at : this.deps.now());
      this.deps.audit.write(egressEntry(event, calls));
      if (this.deps.tracing?.enabled === true) this.deps.tracing.egress(event, calls.map((c) => c.callId));
      this.deps.metrics.egressEvent(event);
      if (event.phase === "decide") this.egress[event.verdict] += 1;
      return;
    }
    const other = event as Exclude<UpstreamEvent, EgressEvent>;
    const action = other.type === "lifecycle" ? `sidecar-${other.action}` : other.action;
    this.deps.audit.write({ kind: "lifecycle", data: { server: this.name, action, ...(other.detail !== undefined ? { detail: other.detail as JsonObject } : {}) } });
  }

  private policyRecord(action: string, detail: JsonObject): void {
    this.deps.audit.write({ kind: "policy", data: { action, server: this.name, detail } });
  }

  /** Runs `fn` once per key for the life of the gateway, so repeated refusals do not flood the log. */
  private once(key: string, fn: () => void): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    fn();
  }
}

/** Whether `uri` is one a template expands to; a template the SDK cannot parse matches nothing. */
function matchesTemplate(template: string, uri: string): boolean {
  try {
    return new UriTemplate(template).match(uri) !== null;
  } catch {
    return false;
  }
}
