/**
 * A strict parser for the Prometheus text exposition format (version 0.0.4), as a scraper
 * reads it: every line must be a comment, a HELP or TYPE line, or a sample; names, label
 * syntax, escapes and values are checked; a family's TYPE comes before its samples and only
 * once; histogram buckets are cumulative and end in +Inf equal to _count. Throws on the
 * first violation, naming the line.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: string;
  help?: string;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = { histogram: ["_bucket", "_sum", "_count"], summary: ["_sum", "_count"] };

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const family = (name: string): Family => families.get(name) ?? families.set(name, { name, type: "untyped", samples: [] }).get(name)!;
  const lines = text.split("\n").slice(0, -1);
  lines.forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) fail("invalid metric name");
      const f = family(name);
      if (kind === "HELP") {
        if (f.help !== undefined) fail("second HELP");
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) fail("invalid escape in HELP");
        f.help = rest;
      } else {
        if (!TYPES.has(rest)) fail("unknown TYPE");
        if (f.samples.length > 0 || f.type !== "untyped") fail("TYPE after samples, or twice");
        f.type = rest;
      }
      return;
    }
    const sample = parseSample(line, fail);
    const owner = [...families.values()].find((f) => f.name === sample.name || (SUFFIXES[f.type] ?? []).some((s) => `${f.name}${s}` === sample.name));
    (owner ?? family(sample.name)).samples.push(sample);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? fail("no metric name");
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at += 1;
    while (line[at] !== "}") {
      const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at))?.[0] ?? fail("bad label name");
      if (!LABEL_NAME.test(label) || label in labels) fail(`bad or repeated label ${label}`);
      at += label.length;
      if (line.slice(at, at + 2) !== '="') fail("label without =\"");
      at += 2;
      let value = "";
      for (;;) {
        const c = line[at] ?? fail("unterminated label value");
        at += 1;
        if (c === '"') break;
        if (c === "\\") {
          const e = line[at] ?? fail("dangling escape");
          at += 1;
          if (e === "n") value += "\n";
          else if (e === "\\" || e === '"') value += e;
          else fail(`invalid escape \\${e}`);
        } else {
          value += c;
        }
      }
      labels[label] = value;
      if (line[at] === ",") at += 1;
      else if (line[at] !== "}") fail("expected , or }");
    }
    at += 1;
  }
  const rest = line.slice(at);
  const m = /^ (\S+)(?: (-?\d+))?$/.exec(rest) ?? fail("expected ' value [timestamp]'");
  const text = m[1]!;
  if (!/^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/.test(text)) fail(`invalid value ${text}`);
  const value = text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : Number(text);
  return { name, labels, value };
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? groups.set(key, { buckets: [] }).get(key)!;
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([le === "+Inf" ? Infinity : Number(le), s.value]);
    } else if (s.name === `${f.name}_count`) {
      g.count = s.value;
    }
  }
  for (const g of groups.values()) {
    for (let i = 1; i < g.buckets.length; i++) {
      if (g.buckets[i]![0] <= g.buckets[i - 1]![0] || g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}: buckets not ascending and cumulative`);
    }
    const last = g.buckets.at(-1);
    if (last === undefined || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${f.name}: the +Inf bucket must exist and equal _count`);
  }
}
