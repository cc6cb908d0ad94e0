import type { Logger } from "pino";
import { backoffDelay } from "../core/gateway/backoff.js";
import { CircuitBreaker, type BreakerState } from "../core/gateway/circuit-breaker.js";
import { IdleTracker } from "../core/gateway/idle-tracker.js";
import { Lifecycle, type ServerState, type StateChange } from "../core/gateway/lifecycle.js";
import { HangarError, isHangarError } from "../core/errors.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { LaunchedServer, LaunchOptions, ServerLauncher, UpstreamEvent, UpstreamExit } from "./server-launcher.js";
import type { SupervisorSettings } from "./supervisor-settings.js";
import { UpstreamClient, type UpstreamManifest } from "./upstream-client.js";
import { classifyUpstreamError, errorMessage, upstreamError } from "./upstream-errors.js";
import { untilAborted } from "./until-aborted.js";

/**
 * Runs one upstream server for the gateway: lazy start on first use, health checks,
 * restart with backoff after an exit, idle shutdown, and a circuit breaker in front of
 * every request. The decisions are the pure core's (Lifecycle, CircuitBreaker,
 * backoffDelay, IdleTracker); this class owns the processes and timers.
 */
export interface SupervisorHooks {
  /** Called before every start; throw (HANGAR_GATEWAY_NOT_APPROVED) to refuse it. */
  beforeStart(): void | Promise<void>;
  /** The server's lists after each start and after each list_changed notification. */
  onManifest(manifest: UpstreamManifest): void;
  onStateChange(change: StateChange, snapshot: SupervisorSnapshot): void;
  onBreakerChange(state: BreakerState, snapshot: SupervisorSnapshot): void;
  onEvent(event: UpstreamEvent): void;
}

export interface SupervisorDeps {
  readonly policy: Policy;
  readonly launcher: ServerLauncher;
  readonly launchOptions: Omit<LaunchOptions, "signal">;
  readonly settings: SupervisorSettings;
  readonly hooks: SupervisorHooks;
  readonly logger: Logger;
  readonly version: string;
  readonly now: () => number;
  readonly random?: () => number;
}

export interface SupervisorSnapshot {
  readonly state: ServerState;
  readonly since: number;
  /** When the running instance became READY; undefined when none runs. */
  readonly readySince?: number;
  readonly restarts: number;
  readonly breaker: BreakerState;
  readonly consecutiveFailures: number;
  readonly callsInFlight: number;
  readonly lastError?: { readonly at: number; readonly message: string };
  readonly upstream?: string;
}

interface Running {
  readonly launched: LaunchedServer;
  readonly client: UpstreamClient;
  readonly readySince: number;
}

export class ServerSupervisor {
  readonly name: string;
  private readonly lifecycle: Lifecycle;
  private readonly breaker: CircuitBreaker;
  private readonly idle: IdleTracker;
  private running: Running | undefined;
  private starting: Promise<UpstreamClient> | undefined;
  private startAbort: AbortController | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private failedStarts = 0;
  private restartCount = 0;
  private lastError: { at: number; message: string } | undefined;
  private closed = false;

  constructor(private readonly deps: SupervisorDeps) {
    this.name = deps.policy.name;
    const now = deps.now();
    this.lifecycle = new Lifecycle(now);
    this.breaker = new CircuitBreaker({ ...deps.settings.breaker, now: deps.now });
    this.idle = new IdleTracker(deps.settings.idleTimeoutMs, now);
  }

  get state(): ServerState {
    return this.lifecycle.state;
  }

  snapshot(): SupervisorSnapshot {
    return {
      state: this.lifecycle.state,
      since: this.lifecycle.since,
      ...(this.running !== undefined ? { readySince: this.running.readySince, upstream: this.running.launched.description } : {}),
      restarts: this.restartCount,
      breaker: this.breaker.state,
      consecutiveFailures: this.breaker.consecutiveFailures,
      callsInFlight: this.idle.callsInFlight,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Runs `work` against a ready server: checks the breaker, starts the server if needed,
   * and sorts failures (transport failures and timeouts count against the breaker; an
   * error the server answered with does not). `timeoutMs` is the work's own deadline.
   */
  async run<T>(work: (client: UpstreamClient) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    this.assertUsable();
    const permit = this.breaker.tryAcquire();
    if (!permit.allowed) throw this.breakerOpenError(permit.retryAfterMs, permit.state);
    this.idle.callStarted(this.deps.now());
    try {
      let client: UpstreamClient;
      try {
        client = await this.ready("first call");
      } catch (err) {
        // A refused or failed start: the start itself recorded any failure.
        if (permit.trial && !isHangarError(err, "HANGAR_GATEWAY_UNAVAILABLE")) this.breaker.releaseTrial();
        throw err;
      }
      try {
        const result = await work(client);
        this.succeeded();
        return result;
      } catch (err) {
        const kind = classifyUpstreamError(err, options.signal);
        if (kind === "application") this.succeeded();
        else if (kind === "transport" || kind === "timeout") this.failed(`${kind === "timeout" ? "timed out" : "went away"} during a request: ${errorMessage(err)}`);
        else if (permit.trial) this.breaker.releaseTrial();
        throw upstreamError(this.name, err, kind, this.deps.settings.callTimeoutMs);
      }
    } finally {
      this.idle.callEnded(this.deps.now());
    }
  }

  /** Starts the server unless it runs (for listing a server whose tools are not cached yet). */
  async ensureStarted(reason: string): Promise<UpstreamClient> {
    this.assertUsable();
    const permit = this.breaker.tryAcquire();
    if (!permit.allowed) throw this.breakerOpenError(permit.retryAfterMs, permit.state);
    if (permit.trial) this.breaker.releaseTrial();
    return this.ready(reason);
  }

  /** Stops the server for good (gateway shutdown): DEAD. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.startAbort?.abort(new HangarError("HANGAR_CLOSED", "the gateway is shutting down"));
    await this.starting?.catch(() => undefined);
    const running = this.running;
    this.running = undefined;
    if (this.lifecycle.state !== "DEAD") this.change("DEAD", "gateway shutdown");
    if (running !== undefined) await this.stopRunning(running);
  }

  private assertUsable(): void {
    if (this.closed) throw new HangarError("HANGAR_CLOSED", `the gateway is shutting down; server ${JSON.stringify(this.name)} takes no more requests`);
    if (this.lifecycle.state === "DEAD") {
      throw new HangarError("HANGAR_GATEWAY_UNAVAILABLE", `server ${JSON.stringify(this.name)} is dead: it failed to restart ${this.failedStarts} times in a row (last error: ${this.lastError?.message ?? "unknown"}); restart hangar serve after fixing it`, {
        data: { server: this.name, reason: "dead" },
      });
    }
  }

  private breakerOpenError(retryAfterMs: number, state: "open" | "half-open"): HangarError {
    const when = state === "open" ? `for another ${Math.ceil(retryAfterMs / 1000)} s` : "until the trial call in progress succeeds";
    return new HangarError(
      "HANGAR_GATEWAY_UNAVAILABLE",
      `server ${JSON.stringify(this.name)} is unavailable: its circuit breaker is ${state} after ${this.breaker.consecutiveFailures} consecutive failures (last: ${this.lastError?.message ?? "unknown"}); calls fail fast ${when}`,
      { data: { server: this.name, reason: "breaker-open", breaker: state, retryAfterMs } },
    );
  }

  private ready(reason: string): Promise<UpstreamClient> {
    if (this.running !== undefined) return Promise.resolve(this.running.client);
    if (this.starting !== undefined) return this.starting;
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    const started = this.start(this.lifecycle.state === "DEGRADED" ? "restart on demand" : reason);
    this.starting = started;
    void started.then(
      () => (this.starting = undefined),
      () => (this.starting = undefined),
    );
    return started;
  }

  private async start(reason: string): Promise<UpstreamClient> {
    await this.deps.hooks.beforeStart();
    if (this.closed) throw new HangarError("HANGAR_CLOSED", "the gateway is shutting down");
    const isRestart = this.lifecycle.state === "DEGRADED";
    this.change("STARTING", reason);
    if (isRestart) this.restartCount += 1;
    const { settings, launcher, policy, launchOptions } = this.deps;
    const abort = new AbortController();
    this.startAbort = abort;
    const timer = setTimeout(() => abort.abort(new HangarError("HANGAR_GATEWAY_TIMEOUT", `server ${JSON.stringify(this.name)} did not start within ${settings.startTimeoutMs} ms`)), settings.startTimeoutMs);
    let launched: LaunchedServer | undefined;
    let client: UpstreamClient | undefined;
    try {
      const launching = launcher.launch(policy, { ...launchOptions, signal: abort.signal });
      launched = await untilAborted(launching, abort.signal).catch((err: unknown) => {
        // Given up on (timeout, shutdown): whatever the launch still produces is stopped.
        launching.then((late) => late.stop(), () => undefined).catch(() => undefined);
        throw err;
      });
      const current = launched;
      client = await untilAborted(UpstreamClient.connect(current, { timeoutMs: settings.startTimeoutMs, version: this.deps.version, onListChanged: () => this.relist(current) }), abort.signal);
      const manifest = await untilAborted(client.listManifest(settings.startTimeoutMs), abort.signal);
      this.deps.hooks.onManifest(manifest);
      const running: Running = { launched, client, readySince: this.deps.now() };
      this.running = running;
      this.failedStarts = 0;
      this.idle.reset(this.deps.now());
      void launched.exited.then((exit) => this.onExit(running, exit));
      void this.pumpEvents(launched);
      this.change("READY", `${launched.description}`);
      this.scheduleHealth();
      this.scheduleIdle();
      return client;
    } catch (err) {
      const cause = abort.signal.aborted && abort.signal.reason !== undefined ? abort.signal.reason : err;
      await client?.close();
      if (launched !== undefined) await launched.stop().catch((e: unknown) => this.deps.logger.warn({ err: e, server: this.name }, "stopping a failed start failed"));
      if (this.closed) throw cause;
      this.failedStarts += 1;
      this.failed(`start failed: ${errorMessage(cause)}${exitTail(await settled(launched))}`);
      this.change("DEGRADED", "start failed");
      this.scheduleRestart();
      throw new HangarError("HANGAR_GATEWAY_UNAVAILABLE", `server ${JSON.stringify(this.name)} could not start: ${errorMessage(cause)}`, { cause, data: { server: this.name, reason: "start-failed" } });
    } finally {
      clearTimeout(timer);
      if (this.startAbort === abort) this.startAbort = undefined;
    }
  }

  private onExit(running: Running, exit: UpstreamExit): void {
    if (this.running !== running || this.closed) return;
    this.lose(`exited (${exit.reason}${exit.code !== undefined && exit.code !== null ? `, code ${exit.code}` : ""})${exitTail(exit)}`);
  }

  /** The running instance is gone or unhealthy: DEGRADED, then a restart after backoff. */
  private lose(message: string): void {
    const running = this.running;
    if (running === undefined) return;
    this.running = undefined;
    this.lastError = { at: this.deps.now(), message };
    this.clearTimers();
    this.change("DEGRADED", message);
    void this.stopRunning(running);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    const { restart } = this.deps.settings;
    if (this.failedStarts >= restart.maxAttempts) {
      this.change("DEAD", `gave up after ${this.failedStarts} failed starts in a row`);
      return;
    }
    const delay = backoffDelay(this.failedStarts + 1, { initialMs: restart.initialDelayMs, maxMs: restart.maxDelayMs, ...(this.deps.random !== undefined ? { random: this.deps.random } : {}) });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed || this.lifecycle.state !== "DEGRADED" || this.starting !== undefined) return;
      this.ready("restart").catch((err: unknown) => this.deps.logger.warn({ err, server: this.name }, "restart failed"));
    }, delay);
    this.restartTimer.unref();
  }

  private scheduleHealth(): void {
    const { healthIntervalMs, pingTimeoutMs } = this.deps.settings;
    if (healthIntervalMs <= 0) return;
    this.healthTimer = setInterval(() => {
      const running = this.running;
      if (running === undefined) return;
      running.client.ping(pingTimeoutMs).then(
        () => undefined,
        (err: unknown) => {
          if (this.running !== running) return;
          this.failed(`health check failed: ${errorMessage(err)}`);
          this.lose(`health check failed: ${errorMessage(err)}`);
        },
      );
    }, healthIntervalMs);
    this.healthTimer.unref();
  }

  private scheduleIdle(): void {
    const { idleTimeoutMs } = this.deps.settings;
    if (idleTimeoutMs <= 0) return;
    const check = (): void => {
      this.idleTimer = undefined;
      const running = this.running;
      if (running === undefined || this.closed) return;
      const now = this.deps.now();
      if (this.idle.isIdle(now)) {
        this.running = undefined;
        this.clearTimers();
        this.change("COLD", `idle for ${idleTimeoutMs} ms`);
        void this.stopRunning(running);
        return;
      }
      const at = this.idle.idleAt();
      this.idleTimer = setTimeout(check, Math.max(10, (at ?? now + idleTimeoutMs) - now));
      this.idleTimer.unref();
    };
    this.idleTimer = setTimeout(check, idleTimeoutMs);
    this.idleTimer.unref();
  }

  private relist(launched: LaunchedServer): void {
    const running = this.running;
    if (running === undefined || running.launched !== launched) return;
    running.client.listManifest(this.deps.settings.startTimeoutMs).then(
      (manifest) => this.deps.hooks.onManifest(manifest),
      (err: unknown) => this.deps.logger.warn({ err, server: this.name }, "re-listing after list_changed failed"),
    );
  }

  private async pumpEvents(launched: LaunchedServer): Promise<void> {
    try {
      for await (const event of launched.events) this.deps.hooks.onEvent(event);
    } catch (err) {
      this.deps.logger.warn({ err, server: this.name }, "reading the server's events failed");
    }
  }

  private async stopRunning(running: Running): Promise<void> {
    await running.client.close();
    await running.launched.stop().catch((err: unknown) => this.deps.logger.warn({ err, server: this.name }, "stopping the server failed"));
  }

  private succeeded(): void {
    const before = this.breaker.state;
    this.breaker.recordSuccess();
    if (before !== "closed") this.deps.hooks.onBreakerChange("closed", this.snapshot());
  }

  private failed(message: string): void {
    this.lastError = { at: this.deps.now(), message };
    if (this.breaker.recordFailure()) this.deps.hooks.onBreakerChange("open", this.snapshot());
  }

  private change(to: ServerState, reason: string): void {
    const change = this.lifecycle.transition(to, this.deps.now(), reason);
    this.deps.logger.info({ server: this.name, from: change.from, to: change.to, reason }, "server state");
    this.deps.hooks.onStateChange(change, this.snapshot());
  }

  private clearTimers(): void {
    for (const timer of [this.restartTimer, this.healthTimer, this.idleTimer]) if (timer !== undefined) clearTimeout(timer);
    this.restartTimer = this.healthTimer = this.idleTimer = undefined;
  }
}


/** The exit of a launch that already ended (for its stderr tail), without waiting for a live one. */
async function settled(launched: LaunchedServer | undefined): Promise<UpstreamExit | undefined> {
  if (launched === undefined) return undefined;
  return Promise.race([launched.exited, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
}

function exitTail(exit: UpstreamExit | undefined): string {
  const tail = exit?.stderrTail?.filter((l) => l.trim() !== "").slice(-3) ?? [];
  return tail.length > 0 ? `; stderr: ${tail.join(" | ")}` : "";
}
