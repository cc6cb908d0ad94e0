/**
 * A tiny Prometheus registry: counters, gauges and histograms with fixed label names,
 * rendered in the text exposition format (version 0.0.4). Each metric holds at most
 * `maxSeries` label sets; past that, new ones are folded into one series whose labels
 * all read "__overflow__", so a client inventing tool names cannot grow memory unbounded.
 */
export const OVERFLOW_LABEL = "__overflow__";
export const DEFAULT_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Labels<L extends string> = Readonly<Record<L, string>>;

interface MetricBase {
  readonly name: string;
  render(): string;
}

/** One label set's value, with its labels already escaped for rendering (they never change). */
interface Series<L extends string, V> {
  readonly labels: Labels<L>;
  readonly pairs: string;
  value: V;
}

abstract class LabelledMetric<L extends string, V> implements MetricBase {
  protected readonly series = new Map<string, Series<L, V>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    private readonly maxSeries: number,
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
  }

  abstract render(): string;
  protected abstract initial(): V;

  protected entry(labels: Labels<L>): Series<L, V> {
    const key = this.keyOf(labels);
    const existing = this.series.get(key);
    if (existing !== undefined) return existing;
    if (this.series.size >= this.maxSeries) {
      const overflow = Object.fromEntries(this.labelNames.map((n) => [n, OVERFLOW_LABEL])) as Labels<L>;
      const overflowKey = this.keyOf(overflow);
      let entry = this.series.get(overflowKey);
      if (entry === undefined) this.series.set(overflowKey, (entry = this.newSeries(overflow)));
      return entry;
    }
    const entry = this.newSeries({ ...labels });
    this.series.set(key, entry);
    return entry;
  }

  private newSeries(labels: Labels<L>): Series<L, V> {
    return { labels, pairs: this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`).join(","), value: this.initial() };
  }

  /** Drops every series: for a collector whose label values come and go (resource types). */
  clear(): void {
    this.series.clear();
  }

  protected keyOf(labels: Labels<L>): string {
    return this.labelNames.map((n) => labels[n]).join("\u0000");
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${this.name} ${type}\n`;
  }

  /** `{a="1",b="2"}`, or nothing without labels; `extra` is a further pair, already escaped (le="0.5"). */
  protected labelText(series: Series<L, V>, extra?: string): string {
    const all = extra === undefined ? series.pairs : series.pairs === "" ? extra : `${series.pairs},${extra}`;
    return all === "" ? "" : `{${all}}`;
  }
}

export class Counter<L extends string = never> extends LabelledMetric<L, number> {
  inc(labels: Labels<L>, by = 1): void {
    this.entry(labels).value += by;
  }

  get(labels: Labels<L>): number {
    return this.series.get(this.keyOf(labels))?.value ?? 0;
  }

  protected initial(): number {
    return 0;
  }

  render(): string {
    let out = this.header("counter");
    for (const series of this.series.values()) out += `${this.name}${this.labelText(series)} ${formatNumber(series.value)}\n`;
    return out;
  }
}

export class Gauge<L extends string = never> extends LabelledMetric<L, number> {
  set(labels: Labels<L>, value: number): void {
    this.entry(labels).value = value;
  }

  protected initial(): number {
    return 0;
  }

  render(): string {
    let out = this.header("gauge");
    for (const series of this.series.values()) out += `${this.name}${this.labelText(series)} ${formatNumber(series.value)}\n`;
    return out;
  }
}

interface HistogramValue {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> extends LabelledMetric<L, HistogramValue> {
  private readonly bucketLabels: readonly string[];

  constructor(name: string, help: string, labelNames: readonly L[], maxSeries: number, private readonly buckets: readonly number[] = DEFAULT_LATENCY_BUCKETS) {
    super(name, help, labelNames, maxSeries);
    this.bucketLabels = [...buckets.map((le) => `le="${formatNumber(le)}"`), `le="+Inf"`];
  }

  observe(labels: Labels<L>, value: number): void {
    const v = this.entry(labels).value;
    v.sum += value;
    v.count += 1;
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) v.counts[i] = (v.counts[i] as number) + 1;
  }

  protected initial(): HistogramValue {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  render(): string {
    let out = this.header("histogram");
    for (const series of this.series.values()) {
      const { value } = series;
      this.bucketLabels.forEach((le, i) => {
        out += `${this.name}_bucket${this.labelText(series, le)} ${i < this.buckets.length ? (value.counts[i] ?? 0) : value.count}\n`;
      });
      const labels = this.labelText(series);
      out += `${this.name}_sum${labels} ${formatNumber(value.sum)}\n`;
      out += `${this.name}_count${labels} ${value.count}\n`;
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly metrics: MetricBase[] = [];

  constructor(private readonly maxSeries = 10_000) {}

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.add(new Counter<L>(name, help, labelNames, this.maxSeries));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.add(new Gauge<L>(name, help, labelNames, this.maxSeries));
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[] = [], buckets?: readonly number[]): Histogram<L> {
    return this.add(new Histogram<L>(name, help, labelNames, this.maxSeries, buckets));
  }

  /** The text exposition; serve it as `text/plain; version=0.0.4`. */
  render(): string {
    return this.metrics.map((m) => m.render()).join("");
  }

  private add<M extends MetricBase>(metric: M): M {
    if (this.metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}
