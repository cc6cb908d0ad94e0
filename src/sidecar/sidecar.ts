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
import { UpstreamDnsClient } from "./dns/upstream-client.js";
import { DEFAULT_BUDGET_WINDOW_MS, NameAccounting } from "./name-accounting.js";
import { cgroupMemoryLimit, ConnectionBudget, MEMORY_HIGH_WATER_FRACTION } from "./proxy/connection-budget.js";
import { ConnectionRate } from "./proxy/connection-rate.js";
import { ExplicitProxy } from "./proxy/explicit-proxy.js";
import { loadInspection } from "./proxy/tls/load-inspection.js";
import type { TlsInspection } from "./proxy/tls/tls-terminator.js";
import { TransparentListener } from "./proxy/transparent-listener.js";
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
}

export interface SidecarAddresses {
  readonly dns: DnsServerAddress;
  readonly proxy: { readonly host: string; readonly port: number };
  /** declared port → local listening port */
  readonly transparent: ReadonlyMap<number, number>;
  readonly answerAddress: string;
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
  private dns: DnsServer | undefined;
  private proxy: ExplicitProxy | undefined;
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
  ) {
    const now = options.now ?? Date.now;
    this.decision = decisionFor(policy, options.config, baseline);
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
    this.ctx = {
      server: policy.name,
      decisionContext: () => this.decision,
      events: options.events,
      resolver: ledger,
      // Remembers more names per wildcard than the budget spends, so its count can pass it.
      names: new NameAccounting({ now, budgetWindowMs: budget.windowMs, maxNamesPerWildcard: Math.max(4096, budget.names + 1) }),
      logger: options.logger,
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
    const sidecar = new Sidecar(options, inputs, answerAddress, upstreamClient, memoryBudget);
    try {
      await sidecar.bind();
    } catch (err) {
      await sidecar.destroy();
      throw err;
    }
    sidecar.lifecycle("started", { ...sidecar.describe(), upstreams });
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
      const drained = Promise.all([this.dns?.close(), this.proxy?.close(), ...[...this.listeners.values()].map((l) => l.close())]);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), this.options.config.drainTimeoutMs);
      });
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (outcome === "late") await this.destroyListeners();
      await drained;
      this.budget.close();
      this.lifecycle("closed");
    })();
    return this.closing;
  }

  async destroy(): Promise<void> {
    this.closing ??= Promise.resolve();
    await this.destroyListeners();
    this.budget.close();
  }

  private async destroyListeners(): Promise<void> {
    await Promise.all([this.dns?.destroy(), this.proxy?.destroy(), ...[...this.listeners.values()].map((l) => l.destroy())]);
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
    });
    this.dnsAddress = await this.dns.listen();
    const { config } = this.options;
    this.inspection = this.options.inspection ?? (config.tls === undefined ? undefined : await loadInspection(config.tls, (this.options.stdin ?? process.stdin) as never));
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
    this.decision = decisionFor(policy, this.options.config, baseline);
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
      answerAddress: a.answerAddress,
      dns: a.dns,
      proxy: a.proxy,
      transparent: Object.fromEntries(a.transparent),
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

function decisionFor(policy: CompiledPolicy, config: SidecarConfig, baseline: BaselineView | undefined): DecisionContext {
  return {
    policy,
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
