/**
 * Arguments for a tool nobody wrote a scenario for, generated from its JSON Schema: every
 * required field, plus any field that takes a URL (so a fetching tool shows where it goes:
 * to a probe host of ours, which capture resolves to the sidecar and records). Strings,
 * numbers, booleans, enums, consts, arrays and nested objects; local `$ref`s. Pure and
 * bounded: a hostile schema (deep, recursive, huge) yields a small value, never a hang.
 */
export const PROBE_HOST = "probe.quarantine.test";

type Schema = Readonly<Record<string, unknown>>;

const MAX_DEPTH = 6;
const MAX_PROPERTIES = 64;
const MAX_STRING = 256;
const URL_WORDS = new Set(["url", "uri", "link", "href", "endpoint", "webhook", "website", "homepage", "callback"]);
const URL_FORMATS = new Set(["uri", "url", "iri", "uri-reference", "iri-reference"]);

export interface SampleOptions {
  /** Names the probe URLs' paths (`http://probe.quarantine.test/<tool>/<field>`). */
  readonly tool?: string;
}

export function sampleArguments(inputSchema: unknown, options: SampleOptions = {}): Record<string, unknown> {
  const root = asSchema(inputSchema);
  if (root === undefined) return {};
  const value = new Sampler(root, options.tool ?? "tool").object(root, [], 0);
  return value;
}

/** `url`, `imageUrl`, `webhook_url`, `target-link`, `urls`: a word of the name says URL. */
export function urlLikeName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return words.some((w) => URL_WORDS.has(w) || URL_WORDS.has(w.replace(/s$/, "")));
}

const asSchema = (v: unknown): Schema | undefined => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Schema) : undefined);

class Sampler {
  constructor(
    private readonly root: Schema,
    private readonly tool: string,
  ) {}

  value(raw: Schema, path: readonly string[], depth: number): unknown {
    const schema = this.resolve(raw, 0);
    if (depth > MAX_DEPTH) return null;
    if ("const" in schema) return schema["const"];
    const name = path.at(-1) ?? "";
    const type = this.type(schema);
    if (type === "string" && this.isUrl(schema, name)) return this.probeUrl(path);
    if (Array.isArray(schema["enum"]) && schema["enum"].length > 0) return schema["enum"][0];
    if ("default" in schema && schema["default"] !== undefined) return schema["default"];
    if (Array.isArray(schema["examples"]) && schema["examples"].length > 0) return schema["examples"][0];
    switch (type) {
      case "string":
        return this.string(schema, name);
      case "integer":
      case "number":
        return this.number(schema, type === "integer");
      case "boolean":
        return false;
      case "array":
        return this.array(schema, path, depth);
      case "object":
        return this.object(schema, path, depth);
      case "null":
        return null;
      default:
        return "hangar-probe";
    }
  }

  object(raw: Schema, path: readonly string[], depth: number): Record<string, unknown> {
    const schema = this.resolve(raw, 0);
    const properties = { ...asSchema(schema["properties"]) };
    for (const part of Array.isArray(schema["allOf"]) ? schema["allOf"] : []) {
      Object.assign(properties, asSchema(this.resolve(asSchema(part) ?? {}, 0)["properties"]));
    }
    const required = new Set(Array.isArray(schema["required"]) ? schema["required"].filter((r): r is string => typeof r === "string") : []);
    const out: Record<string, unknown> = {};
    for (const [key, sub] of Object.entries(properties).slice(0, MAX_PROPERTIES)) {
      const child = asSchema(sub);
      if (child === undefined) continue;
      const resolved = this.resolve(child, 0);
      if (!required.has(key) && !(this.type(resolved) === "string" && this.isUrl(resolved, key))) continue;
      out[key] = this.value(child, [...path, key], depth + 1);
    }
    return out;
  }

  private array(schema: Schema, path: readonly string[], depth: number): unknown[] {
    const items = asSchema(schema["items"]);
    if (items === undefined) return [];
    const min = typeof schema["minItems"] === "number" ? Math.min(Math.max(schema["minItems"], 1), 5) : 1;
    return Array.from({ length: min }, () => this.value(items, path, depth + 1));
  }

  private string(schema: Schema, name: string): string {
    const format = typeof schema["format"] === "string" ? schema["format"] : "";
    let s: string;
    if (format === "email" || /e-?mail/i.test(name)) s = `probe@${PROBE_HOST}`;
    else if (format === "date-time") s = "2025-01-01T00:00:00.000Z";
    else if (format === "date") s = "2025-01-01";
    else if (format === "time") s = "00:00:00";
    else if (format === "uuid") s = "00000000-0000-4000-8000-000000000000";
    else if (format === "hostname" || /host(name)?$/i.test(name)) s = PROBE_HOST;
    else if (format === "ipv4") s = "192.0.2.1";
    else s = "hangar-probe";
    const min = typeof schema["minLength"] === "number" ? Math.min(schema["minLength"], MAX_STRING) : 0;
    const max = typeof schema["maxLength"] === "number" ? Math.max(schema["maxLength"], 0) : MAX_STRING;
    if (s.length < min) s = s.padEnd(min, "x");
    return s.slice(0, Math.max(max, min));
  }

  private number(schema: Schema, integer: boolean): number {
    const num = (k: string): number | undefined => (typeof schema[k] === "number" && Number.isFinite(schema[k]) ? schema[k] : undefined);
    const exclusiveMin = num("exclusiveMinimum");
    const min = num("minimum") ?? (exclusiveMin !== undefined ? exclusiveMin + (integer ? 1 : 0.5) : undefined);
    const max = num("maximum") ?? (num("exclusiveMaximum") !== undefined ? num("exclusiveMaximum")! - (integer ? 1 : 0.5) : undefined);
    let n = min ?? 1;
    if (max !== undefined && n > max) n = max;
    return integer ? Math.ceil(n) : n;
  }

  private isUrl(schema: Schema, name: string): boolean {
    const format = typeof schema["format"] === "string" ? schema["format"] : undefined;
    return (format !== undefined && URL_FORMATS.has(format)) || urlLikeName(name);
  }

  private probeUrl(path: readonly string[]): string {
    const segment = (s: string): string => encodeURIComponent(s.slice(0, 60));
    return `http://${PROBE_HOST}/${[this.tool, ...path].map(segment).join("/")}`;
  }

  private type(schema: Schema): string | undefined {
    const t = schema["type"];
    if (typeof t === "string") return t;
    if (Array.isArray(t)) return t.find((x): x is string => typeof x === "string" && x !== "null");
    if (asSchema(schema["properties"]) !== undefined) return "object";
    if (Array.isArray(schema["enum"])) return undefined;
    return undefined;
  }

  /** Follows local `$ref`s and picks the first non-null branch of anyOf/oneOf. */
  private resolve(schema: Schema, hops: number): Schema {
    if (hops > 16) return {};
    const ref = schema["$ref"];
    if (typeof ref === "string" && (ref === "#" || ref.startsWith("#/"))) {
      let node: unknown = this.root;
      for (const part of ref.length > 1 ? ref.slice(2).split("/") : []) node = asSchema(node)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
      const target = asSchema(node);
      return target === undefined ? {} : this.resolve(target, hops + 1);
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      const branches = schema[key];
      if (!Array.isArray(branches)) continue;
      const pick = branches.map(asSchema).find((b) => b !== undefined && b["type"] !== "null");
      if (pick !== undefined) return this.resolve({ ...schema, [key]: undefined, ...pick }, hops + 1);
    }
    return schema;
  }
}
