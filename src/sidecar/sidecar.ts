import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { loadBaselineFile } from "../baseline/load-baseline.js";
import { asFrozen } from "../core/baseline/baseline-schema.js";
import { toBaselineView } from "../core/baseline/baseline-view.js";
import type { BaselineView, DecisionContext } from "../core/decision.js";
import { HangarError } from "../core/errors.js";
import type { EventSink, LifecycleEvent } from "../core/events.js";
import { parseIpRange, type IpRange } from "../core/ip.js";
import { compilePolicy, type CompiledPolicy } from "../core/policy/compiled-policy.js";
import { DEFAULT_TUNNELLING_LIMITS } from "../core/tunnelling.js";
import { formatIssues, loadPolicyFile } from "../policy/index.js";
import { addressInSubnet } from "./answer-address.js";
import { DnsServer, type DnsServerAddress } from "./dns/dns-server.js";
import { NameLedger } from "./dns/name-ledger.js";
import { loadUdpBatchAddon, type UdpBatchAddon } from "./dns/udp-batch-addon.js";
import { batchedBinder, type UdpBinder } from "./dns/udp-transports.js";
import { UpstreamDnsClient } from "./dns/upstream-client.js";
import { CounterReporter, readCounterState } from "./counter-state.js";
import { DEFAULT_BUDGET_WINDOW_MS, NameAccounting } from "./name-accounting.js";
import { cgroupMemoryLimit, ConnectionBudget, MEMORY_HIGH_WATER_FRACTION } from "./proxy/connection-budget.js";
import { ConnectionRate } from "./proxy/connection-rate.js";
import { ExplicitProxy } from "./proxy/explicit-proxy.js";
import { loadInspection, readLine } from "./proxy/tls/load-inspection.js";
import { compileSecretWatch, EMPTY_SECRET_WATCH, type SecretWatch } from "../core/secrets/secret-watch.js";
import { RedactingSink } from "./secrets/redacting-sink.js";
import { secretsFromLine } from "./secrets/stdin-secrets.js";
import type { TlsInspection } from "./proxy/tls/tls-terminator.js";
import { TransparentListener } from "./proxy/transparent-listener.js";
import { CatchAllListener } from "./catch-all/catch-all-listener.js";
import { loadOriginalDestinationReader, type DatagramCatcher, type OriginalDestinationReader } from "./catch-all/original-destination.js";
import { UdpCatchAll } from "./catch-all/udp-catch-all.js";
import { EgressGate } from "./proxy/egress-gate.js";
import { nameserversFromResolvConf, parseUpstream, type SidecarConfig, type Upstream } from "./sidecar-config.js";
import type { SidecarContext } from "./sidecar-context.js";

/**
 * The sidecar's composition root: one DNS resolver, one name ledger, one account of names
 * under wildcards, one transparent listener per declared port and one explicit proxy, all
 * sharing a context whose decision inputs are swapped atomically on reload. Live
 * connections keep the verdict they got.
 */
export interface SidecarOptions {
  readonly config: SidecarConfig;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Upstream resolvers; default config.upstreamDns, else /etc/resolv.conf. */
  readonly upstreams?: readonly Upstream[];
  /** TLS inspection built by the caller (tests); default from config.tls, reading the CA from `stdin` when it says so. */
  readonly inspection?: TlsInspection;
  readonly stdin?: NodeJS.ReadableStream;
  /** Reads resident memory for the memory budget (tests); default process.memoryUsage.rss. */
  readonly rss?: () => number;
  /** Reads a redirected connection's original destination (tests); default the native addon, loaded only with config.catchAll. */
  readonly originalDestination?: OriginalDestinationReader;
  /** The UDP catch-all's socket (tests); default the native addon's. */
  readonly datagramCatcher?: DatagramCatcher;
  /** The DNS server's batched UDP socket; default the native addon when this build has it, else (or null) dgram. */
  readonly udpBatch?: UdpBatchAddon | null;
}

export interface SidecarAddresses {
  readonly dns: DnsServerAddress;
  readonly proxy: { readonly host: string; readonly port: number };
  /** declared port → local listening port */
  readonly transparent: ReadonlyMap<number, number>;
  readonly answerAddress: string;
  /** The catch-all listener's port, when config.catchAll opens one. */
  readonly catchAll?: number;
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly message: string;
  readonly opened: readonly number[];
  readonly closed: readonly number[];
}

export class Sidecar implements AsyncDisposable {
  private decision: DecisionContext;
  private readonly listeners = new Map<number, TransparentListener>();
  private readonly rate: ConnectionRate;
  private readonly budget: ConnectionBudget;
  private readonly ctx: SidecarContext;
  private readonly names: NameAccounting;
  private readonly counters: CounterReporter;
  private dns: DnsServer | undefined;
  private proxy: ExplicitProxy | undefined;
  private catchAll: CatchAllListener | undefined;
  private dnsAddress: DnsServerAddress | undefined;
  private proxyPort = 0;
  private inspection: TlsInspection | undefined;
  private closing: Promise<void> | undefined;
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, message: "", opened: [], closed: [] });

  private constructor(
    private readonly options: SidecarOptions,
    { policy, baseline }: DecisionInputs,
    private readonly answerAddress: string,
    private readonly upstreamClient: UpstreamDnsClient,
    memoryBudgetBytes: number | undefined,
    private readonly stdinLine: string | undefined,
    private readonly secrets: SecretWatch,
  ) {
    const now = options.now ?? Date.now;
    this.decision = decisionFor(policy, options.config, baseline, secrets);
    const ledger = new NameLedger({ upstream: upstreamClient, now });
    const budget = lookupBudget(options.config);
    this.rate = new ConnectionRate(now);
    // One budget for every listener: the cap and the memory check count the whole process.
    this.budget = new ConnectionBudget({
      now,
      maxConnections: options.config.maxConnections,
      ...(memoryBudgetBytes !== undefined ? { memoryHighWaterBytes: Math.floor(memoryBudgetBytes * MEMORY_HIGH_WATER_FRACTION) } : {}),
      ...(options.rss !== undefined ? { rss: options.rss } : {}),
    });
    // Remembers more names per wildcard than the budget spends, so its count can pass it.
    this.names = new NameAccounting({ now, budgetWindowMs: budget.windowMs, maxNamesPerWildcard: Math.max(4096, budget.names + 1) });
    this.counters = new CounterReporter({ names: this.names, rate: this.rate, report: (state) => this.lifecycle("counters", { ...state }) });
    this.ctx = {
      server: policy.name,
      decisionContext: () => this.decision,
      // Nothing leaves the sidecar as an event with a secret in it (a leaking DNS name, Host or path).
      events: secrets.needles.length === 0 ? options.events : new RedactingSink(options.events, secrets),
      resolver: ledger,
      names: this.names,
      logger: options.logger,
      inspectBodyBytes: options.config.inspectBodyBytes,
      now,
      newId: randomUUID,
    };
  }

  /** Loads the policy (and the baseline, if any), binds every listener, and emits a `started` lifecycle event. */
  static async start(options: SidecarOptions): Promise<Sidecar> {
    const inputs = await loadDecisionInputs(options.config);
    const { config } = options;
    const answerAddress = config.answerAddress ?? addressInSubnet(config.answerSubnet!);
    const upstreams = options.upstreams ?? (await defaultUpstreams(config));
    const upstreamClient = new UpstreamDnsClient({ servers: upstreams, logger: options.logger });
    const memoryBudget = config.memoryBudgetMiB !== undefined ? config.memoryBudgetMiB * 1024 * 1024 : await cgroupMemoryLimit();
    // One line on stdin carries the CA and the secrets, whichever of them this sandbox has.
    const fromStdin = config.secrets === "stdin" || (config.tls?.ca === "stdin" && options.inspection === undefined);
    const stdinLine = fromStdin ? await readLine((options.stdin ?? process.stdin) as never) : undefined;
    const secrets = config.secrets === "stdin" && stdinLine !== undefined ? compileSecretWatch(secretsFromLine(stdinLine)) : EMPTY_SECRET_WATCH;
    const sidecar = new Sidecar(options, inputs, answerAddress, upstreamClient, memoryBudget, stdinLine, secrets);
    let restoredCounters: boolean;
    try {
      restoredCounters = await sidecar.restoreCounters();
      await sidecar.bind();
    } catch (err) {
      await sidecar.destroy();
      throw err;
    }
    sidecar.counters.start();
    sidecar.lifecycle("started", { ...sidecar.describe(), upstreams, restoredCounters });
    return sidecar;
  }

  get server(): string {
    return this.ctx.server;
  }

  addresses(): SidecarAddresses {
    const transparent = new Map<number, number>();
    for (const [declared, l] of this.listeners) transparent.set(declared, l.address()?.port ?? 0);
    return {
      dns: this.dnsAddress!,
      proxy: { host: this.options.config.listen.host, port: this.proxyPort },
      transparent,
      answerAddress: this.answerAddress,
      ...(this.catchAll !== undefined ? { catchAll: this.catchAll.address()?.port ?? 0 } : {}),
    };
  }

  /**
   * Re-reads the policy file (and the baseline file). On success the next attempt is decided
   * by the new policy; live connections are untouched; listeners open for new ports and drain
   * for removed ones. On failure the old policy and baseline stay in force.
   */
  reload(): Promise<ReloadResult> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  /**
   * Stops accepting and lets live connections finish for `drainTimeoutMs`, then cuts the rest.
   * Either way each spliced connection's close event (with its bytes) is emitted before this
   * resolves, inside the engine's stop grace period.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.lifecycle("closing");
      const drained = Promise.all([this.dns?.close(), this.proxy?.close(), this.catchAll?.close(), ...[...this.listeners.values()].map((l) => l.close())]);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), this.options.config.drainTimeoutMs);
      });
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (outcome === "late") await this.destroyListeners();
      await drained;
      this.budget.close();
      this.flushCounters();
      this.counters.stop();
      this.lifecycle("closed");
    })();
    return this.closing;
  }

  async destroy(): Promise<void> {
    this.closing ??= Promise.resolve();
    await this.destroyListeners();
    this.budget.close();
    this.flushCounters();
    this.counters.stop();
  }

  /** Reports the rate and tunnelling counts now if they moved since the last report (exit handlers call it). */
  flushCounters(): void {
    try {
      this.counters.flush();
    } catch (err) {
      this.options.logger.error({ err }, "could not report the counters");
    }
  }

  /** Takes over what the previous process of this sandbox had counted, when the control plane left it. */
  private async restoreCounters(): Promise<boolean> {
    const file = this.options.config.countersFile;
    if (file === undefined) return false;
    const state = await readCounterState(file);
    if (state === undefined) return false;
    this.names.restore(state.names);
    this.rate.restore(state.rates);
    return true;
  }

  private async destroyListeners(): Promise<void> {
    await Promise.all([this.dns?.destroy(), this.proxy?.destroy(), this.catchAll?.destroy(), ...[...this.listeners.values()].map((l) => l.destroy())]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async bind(): Promise<void> {
    const { listen } = this.options.config;
    this.dns = new DnsServer({
      context: this.ctx,
      records: this.upstreamClient,
      host: listen.host,
      port: listen.dnsPort,
      answer: { kind: "sidecar", address: this.answerAddress },
      ...this.dnsUdp(),
    });
    this.dnsAddress = await this.dns.listen();
    const { config } = this.options;
    this.inspection =
      this.options.inspection ?? (config.tls === undefined ? undefined : await loadInspection(config.tls, this.stdinLine !== undefined ? { line: this.stdinLine } : ((this.options.stdin ?? process.stdin) as never)));
    const inspection = this.inspection === undefined ? {} : { inspection: this.inspection };
    this.proxy = new ExplicitProxy({
      ctx: this.ctx,
      host: listen.host,
      port: listen.proxyPort,
      rate: this.rate,
      budget: this.budget,
      idleTimeoutMs: config.idleTimeoutMs,
      peekTimeoutMs: config.peekTimeoutMs,
      ...inspection,
    });
    this.proxyPort = (await this.proxy.listen()).port;
    await this.openListeners(this.decision.policy.transparentPorts);
    if (config.catchAll !== undefined) await this.openCatchAll(config.catchAll.port);
  }

  /** The batched UDP socket for DNS when the addon is here (the sidecar image compiles it), else dgram's. */
  private dnsUdp(): { udp?: UdpBinder } {
    const addon = this.options.udpBatch === undefined ? loadUdpBatchAddon() : this.options.udpBatch;
    return addon === undefined || addon === null ? {} : { udp: batchedBinder(addon) };
  }

  /** Every other connection of the sandbox: raw IPs decided here, the sidecar's own address on any port handed to the transparent path. */
  private async openCatchAll(port: number): Promise<void> {
    const { listen, peekTimeoutMs, idleTimeoutMs } = this.options.config;
    const shared = { ctx: this.ctx, rate: this.rate, budget: this.budget, idleTimeoutMs };
    // Never bound: it only adopts connections the catch-all hands it, with their own port.
    const transparent = new TransparentListener({ ...shared, host: listen.host, listenPort: 0, declaredPort: 0, peekTimeoutMs, ...(this.inspection !== undefined ? { inspection: this.inspection } : {}) });
    const addon = this.options.originalDestination === undefined ? loadOriginalDestinationReader() : undefined;
    const reader = this.options.originalDestination ?? addon!;
    // UDP arrives at any destination address (the netns delivers them all locally): bound to every address, on the same port number.
    const catcher = this.options.datagramCatcher ?? addon;
    const udp = catcher === undefined ? undefined : new UdpCatchAll({ ctx: this.ctx, gate: new EgressGate(this.ctx, this.rate), catcher, host: "0.0.0.0", port });
    this.catchAll = new CatchAllListener({ ...shared, host: listen.host, port, ownAddresses: [listen.host, this.answerAddress], reader, transparent, ...(udp ? { udp } : {}) });
    await this.catchAll.listen();
  }

  private async openListeners(ports: readonly number[]): Promise<number[]> {
    const { listen, peekTimeoutMs, idleTimeoutMs } = this.options.config;
    const opened: number[] = [];
    for (const declaredPort of ports) {
      if (this.listeners.has(declaredPort)) continue;
      const listener = new TransparentListener({
        ctx: this.ctx,
        host: listen.host,
        listenPort: listen.transparentPorts[String(declaredPort)] ?? declaredPort,
        declaredPort,
        peekTimeoutMs,
        idleTimeoutMs,
        rate: this.rate,
        budget: this.budget,
        ...(this.inspection !== undefined ? { inspection: this.inspection } : {}),
      });
      await listener.listen();
      this.listeners.set(declaredPort, listener);
      opened.push(declaredPort);
    }
    return opened;
  }

  private async reloadNow(): Promise<ReloadResult> {
    if (this.closing !== undefined) return { ok: false, message: "sidecar is closing", opened: [], closed: [] };
    let policy: CompiledPolicy;
    let baseline: BaselineView | undefined;
    try {
      ({ policy, baseline } = await loadDecisionInputs(this.options.config));
      if (policy.name !== this.ctx.server) {
        throw new HangarError("HANGAR_POLICY_INVALID", `policy name changed from ${this.ctx.server} to ${policy.name}; restart the sandbox instead`);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.lifecycle("reload-failed", { error: message });
      return { ok: false, message, opened: [], closed: [] };
    }
    // New ports open before the switch so a newly declared port works as soon as DNS says so.
    let opened: number[];
    try {
      opened = await this.openListeners(policy.transparentPorts);
    } catch (err) {
      const message = `could not open a listener: ${err instanceof Error ? err.message : String(err)}`;
      this.lifecycle("reload-failed", { error: message });
      return { ok: false, message, opened: [], closed: [] };
    }
    this.decision = decisionFor(policy, this.options.config, baseline, this.secrets);
    const keep = new Set(policy.transparentPorts);
    const closed: number[] = [];
    for (const [port, listener] of this.listeners) {
      if (keep.has(port)) continue;
      this.listeners.delete(port);
      closed.push(port);
      // Draining, not destroying: connections already spliced were allowed when they began.
      void listener.close();
    }
    this.lifecycle("reloaded", { ...this.describe(), opened, closed });
    return { ok: true, message: "reloaded", opened, closed };
  }

  private describe(): Record<string, unknown> {
    const a = this.addresses();
    return {
      mode: this.decision.mode,
      capture: this.decision.policy.capture.enabled,
      baseline: this.options.config.baselineFile !== undefined,
      secrets: this.secrets.secrets.map((s) => s.name),
      answerAddress: a.answerAddress,
      dns: a.dns,
      proxy: a.proxy,
      transparent: Object.fromEntries(a.transparent),
      ...(a.catchAll !== undefined ? { catchAll: a.catchAll } : {}),
    };
  }

  private lifecycle(action: LifecycleEvent["action"], detail?: Record<string, unknown>): void {
    const event: LifecycleEvent = {
      v: 1,
      ts: new Date(this.ctx.now()).toISOString(),
      type: "lifecycle",
      server: this.ctx.server,
      action,
      ...(detail === undefined ? {} : { detail }),
    };
    this.options.events.emit(event);
  }
}

function decisionFor(policy: CompiledPolicy, config: SidecarConfig, baseline: BaselineView | undefined, secrets: SecretWatch): DecisionContext {
  return {
    policy,
    ...(secrets.needles.length > 0 ? { secrets } : {}),
    ...(config.credentialScan === false ? { credentialScan: false } : {}),
    mode: config.mode ?? policy.mode,
    ...(baseline !== undefined ? { baseline } : {}),
    trustedRanges: config.trustedUpstreamRanges.map((c) => parseIpRange(c) as IpRange),
    tunnelling: { ...DEFAULT_TUNNELLING_LIMITS, lookupBudget: lookupBudget(config).names },
  };
}

function lookupBudget(config: SidecarConfig): { readonly names: number; readonly windowMs: number } {
  const names = config.lookupBudget?.names ?? DEFAULT_TUNNELLING_LIMITS.lookupBudget;
  const windowSeconds = config.lookupBudget?.windowSeconds;
  return { names, windowMs: windowSeconds === undefined ? DEFAULT_BUDGET_WINDOW_MS : windowSeconds * 1000 };
}

interface DecisionInputs {
  readonly policy: CompiledPolicy;
  readonly baseline?: BaselineView;
}

/** The policy (with the config's capture override applied) and the frozen baseline, both read afresh. */
async function loadDecisionInputs(config: SidecarConfig): Promise<DecisionInputs> {
  const policy = await loadCompiled(config.policyFile, config.capture);
  if (config.baselineFile === undefined) return { policy };
  return { policy, baseline: await loadBaselineView(config.baselineFile) };
}

async function loadCompiled(file: string, capture: SidecarConfig["capture"]): Promise<CompiledPolicy> {
  const result = await loadPolicyFile(file);
  if (!result.ok) {
    throw new HangarError("HANGAR_POLICY_INVALID", `policy ${file} is invalid:\n${formatIssues(result.issues)}`, {
      data: { file },
    });
  }
  if (capture === undefined) return result.compiled;
  const source = result.compiled.source;
  return compilePolicy({ ...source, egress: { ...source.egress, capture } });
}

/** Only a frozen baseline is used for drift: a learning one is refused, never half-applied. */
async function loadBaselineView(file: string): Promise<BaselineView> {
  const result = await loadBaselineFile(file);
  if (!result.ok) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `baseline ${file} is invalid:\n${formatIssues(result.issues)}`, { data: { file } });
  }
  const frozen = asFrozen(result.baseline);
  if (frozen === undefined) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `baseline ${file} is still learning; freeze it first (hangar baseline freeze ${file})`, { data: { file } });
  }
  return toBaselineView(frozen);
}

async function defaultUpstreams(config: SidecarConfig): Promise<Upstream[]> {
  if (config.upstreamDns !== undefined) return config.upstreamDns.map((s) => parseUpstream(s)!);
  const text = await readFile("/etc/resolv.conf", "utf8").catch(() => "");
  const found = nameserversFromResolvConf(text);
  if (found.length === 0) {
    throw new HangarError("HANGAR_CONFIG_INVALID", "no upstream DNS: set upstreamDns, or give the sidecar an /etc/resolv.conf with an IPv4 nameserver");
  }
  return found;
}
