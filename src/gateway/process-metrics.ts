import { readdirSync, readFileSync } from "node:fs";
import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import { MetricsRegistry } from "./metrics-registry.js";

/**
 * The process and Node.js runtime metrics Prometheus users expect by default, under the
 * names prom-client's collectDefaultMetrics uses, so stock Node.js dashboards work: CPU,
 * memory, file descriptors, event-loop delay, GC pauses, active resources, heap spaces.
 * Values are read when scraped; the event-loop monitor and the GC observer run from
 * start() to close(). Unlike prom-client, CPU counters count from process start.
 */
export interface ProcessMetricsOptions {
  /** Where /proc/self lives (file descriptors and their limit); Linux only, skipped elsewhere. */
  readonly procSelf?: string;
  /** Event-loop delay sampling resolution, ms (prom-client's default: 10). */
  readonly eventLoopResolutionMs?: number;
}

const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
};

export class ProcessMetrics {
  private readonly registry = new MetricsRegistry(1000);
  private readonly procSelf: string;
  private readonly resolutionMs: number;
  private readonly startTimeSeconds = Math.round(Date.now() / 1000 - process.uptime());
  private readonly maxFds: number | undefined;
  private readonly version = /^v?(\d+)\.(\d+)\.(\d+)/.exec(process.version);
  private lastCpu = { user: 0, system: 0 };
  private delay: IntervalHistogram | undefined;
  private gcObserver: PerformanceObserver | undefined;
  private lagProbe: NodeJS.Immediate | undefined;
  private lagSeconds = 0;

  private readonly cpuUser;
  private readonly cpuSystem;
  private readonly cpuTotal;
  private readonly startTime;
  private readonly rss;
  private readonly openFds;
  private readonly maxFdsGauge;
  private readonly lag;
  private readonly lagStats;
  private readonly resources;
  private readonly resourcesTotal;
  private readonly heapTotal;
  private readonly heapUsed;
  private readonly external;
  private readonly spaceTotal;
  private readonly spaceUsed;
  private readonly spaceAvailable;
  private readonly versionInfo;
  private readonly gc;

  constructor(options: ProcessMetricsOptions = {}) {
    this.procSelf = options.procSelf ?? "/proc/self";
    this.resolutionMs = options.eventLoopResolutionMs ?? 10;
    this.maxFds = readMaxFds(this.procSelf);
    const r = this.registry;
    this.cpuUser = r.counter("process_cpu_user_seconds_total", "Total user CPU time spent in seconds.");
    this.cpuSystem = r.counter("process_cpu_system_seconds_total", "Total system CPU time spent in seconds.");
    this.cpuTotal = r.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
    this.startTime = r.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
    this.rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    this.openFds = r.gauge("process_open_fds", "Number of open file descriptors.");
    this.maxFdsGauge = r.gauge("process_max_fds", "Maximum number of open file descriptors.");
    this.lag = r.gauge("nodejs_eventloop_lag_seconds", "Lag of event loop in seconds.");
    this.lagStats = {
      min: r.gauge("nodejs_eventloop_lag_min_seconds", "The minimum recorded event loop delay."),
      max: r.gauge("nodejs_eventloop_lag_max_seconds", "The maximum recorded event loop delay."),
      mean: r.gauge("nodejs_eventloop_lag_mean_seconds", "The mean of the recorded event loop delays."),
      stddev: r.gauge("nodejs_eventloop_lag_stddev_seconds", "The standard deviation of the recorded event loop delays."),
      p50: r.gauge("nodejs_eventloop_lag_p50_seconds", "The 50th percentile of the recorded event loop delays."),
      p90: r.gauge("nodejs_eventloop_lag_p90_seconds", "The 90th percentile of the recorded event loop delays."),
      p99: r.gauge("nodejs_eventloop_lag_p99_seconds", "The 99th percentile of the recorded event loop delays."),
    };
    this.resources = r.gauge("nodejs_active_resources", "Number of active resources that are currently keeping the event loop alive, grouped by async resource type.", ["type"]);
    this.resourcesTotal = r.gauge("nodejs_active_resources_total", "Total number of active resources.");
    this.heapTotal = r.gauge("nodejs_heap_size_total_bytes", "Process heap size from Node.js in bytes.");
    this.heapUsed = r.gauge("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.");
    this.external = r.gauge("nodejs_external_memory_bytes", "Node.js external memory size in bytes.");
    this.spaceTotal = r.gauge("nodejs_heap_space_size_total_bytes", "Process heap space size total from Node.js in bytes.", ["space"]);
    this.spaceUsed = r.gauge("nodejs_heap_space_size_used_bytes", "Process heap space size used from Node.js in bytes.", ["space"]);
    this.spaceAvailable = r.gauge("nodejs_heap_space_size_available_bytes", "Process heap space size available from Node.js in bytes.", ["space"]);
    this.versionInfo = r.gauge("nodejs_version_info", "Node.js version info.", ["version", "major", "minor", "patch"]);
    this.gc = r.histogram("nodejs_gc_duration_seconds", "Garbage collection duration by kind, one of major, minor, incremental or weakcb.", ["kind"], GC_BUCKETS);
  }

  /** Starts the event-loop delay monitor and the GC observer. Idempotent. */
  start(): this {
    if (this.delay === undefined) {
      this.delay = monitorEventLoopDelay({ resolution: this.resolutionMs });
      this.delay.enable();
    }
    if (this.gcObserver === undefined) {
      this.gcObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          // Node puts the GC kind in `detail`; @types/node 20 does not declare it.
          const kind = (entry as { readonly detail?: { readonly kind?: number } | null }).detail?.kind;
          this.gc.observe({ kind: (kind !== undefined ? GC_KINDS[kind] : undefined) ?? "unknown" }, entry.duration / 1000);
        }
      });
      this.gcObserver.observe({ entryTypes: ["gc"] });
    }
    return this;
  }

  /** Stops the monitor and the observer. Safe to call twice; render() still works after. */
  close(): void {
    this.delay?.disable();
    this.gcObserver?.disconnect();
    if (this.lagProbe !== undefined) clearImmediate(this.lagProbe);
    this.delay = undefined;
    this.gcObserver = undefined;
    this.lagProbe = undefined;
  }

  /** Reads the current values and returns them in the text exposition format. */
  render(): string {
    this.collect();
    return this.registry.render();
  }

  private collect(): void {
    const cpu = process.cpuUsage();
    const user = (cpu.user - this.lastCpu.user) / 1e6;
    const system = (cpu.system - this.lastCpu.system) / 1e6;
    this.lastCpu = cpu;
    this.cpuUser.inc({}, user);
    this.cpuSystem.inc({}, system);
    this.cpuTotal.inc({}, user + system);
    this.startTime.set({}, this.startTimeSeconds);

    const memory = process.memoryUsage();
    this.rss.set({}, memory.rss);
    this.heapTotal.set({}, memory.heapTotal);
    this.heapUsed.set({}, memory.heapUsed);
    this.external.set({}, memory.external);
    for (const s of getHeapSpaceStatistics()) {
      const space = s.space_name.replace(/_space$/, "");
      this.spaceTotal.set({ space }, s.space_size);
      this.spaceUsed.set({ space }, s.space_used_size);
      this.spaceAvailable.set({ space }, s.space_available_size);
    }

    const fds = countOpenFds(this.procSelf);
    if (fds !== undefined) this.openFds.set({}, fds);
    if (this.maxFds !== undefined) this.maxFdsGauge.set({}, this.maxFds);

    const counts = new Map<string, number>();
    for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
    this.resources.clear();
    for (const [type, n] of counts) this.resources.set({ type }, n);
    this.resourcesTotal.set({}, [...counts.values()].reduce((a, b) => a + b, 0));

    this.collectEventLoop();
    if (this.version !== null) {
      const [, major = "", minor = "", patch = ""] = this.version;
      this.versionInfo.set({ version: process.version, major, minor, patch }, 1);
    }
  }

  /** The lag gauge is the delay of a setImmediate queued at the previous scrape, as prom-client does it. */
  private collectEventLoop(): void {
    this.lag.set({}, this.lagSeconds);
    if (this.lagProbe === undefined && this.delay !== undefined) {
      const queued = process.hrtime.bigint();
      this.lagProbe = setImmediate(() => {
        this.lagProbe = undefined;
        this.lagSeconds = Number(process.hrtime.bigint() - queued) / 1e9;
      });
    }
    const h = this.delay;
    if (h === undefined || h.count === 0) return;
    const s = (ns: number): number => ns / 1e9;
    this.lagStats.min.set({}, s(h.min));
    this.lagStats.max.set({}, s(h.max));
    this.lagStats.mean.set({}, s(h.mean));
    this.lagStats.stddev.set({}, s(h.stddev));
    this.lagStats.p50.set({}, s(h.percentile(50)));
    this.lagStats.p90.set({}, s(h.percentile(90)));
    this.lagStats.p99.set({}, s(h.percentile(99)));
    h.reset();
  }
}

function countOpenFds(procSelf: string): number | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    // Less the descriptor readdir itself held open while listing.
    return readdirSync(`${procSelf}/fd`).length - 1;
  } catch {
    return undefined;
  }
}

function readMaxFds(procSelf: string): number | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    const line = readFileSync(`${procSelf}/limits`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/ {2,}/)[1];
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}
