import { HangarError } from "../errors.js";

/**
 * Canonical JSON: the one byte form of a value that the hash chain commits to. Object keys
 * are sorted by UTF-16 code units (as in RFC 8785), there is no whitespace, and strings and
 * numbers are written as JSON.stringify writes them. The form survives a JSON.parse round
 * trip, which is what lets `verify` recompute a hash from the text stored in SQLite.
 *
 * Only plain JSON is accepted. Properties whose value is `undefined` are left out, as
 * JSON.stringify does; anything else that JSON cannot carry (functions, symbols, bigints,
 * NaN, Infinity, `undefined` inside an array, cycles, class instances) is an error, because
 * a silently altered value would make the log say something other than what happened.
 */
export type JsonPrimitive = null | boolean | number | string;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Deep enough for any honest payload; a deeper one is refused rather than overflowing the stack. */
export const MAX_CANONICAL_DEPTH = 64;

export function canonicalJson(value: unknown): string {
  return new CanonicalWriter().write(value);
}

/** One walk; the key path is kept as a stack and only spelt out when something fails. */
class CanonicalWriter {
  private readonly path: (string | number)[] = [];
  private readonly ancestors: object[] = [];

  write(value: unknown): string {
    switch (typeof value) {
      case "string":
        return quote(value);
      case "boolean":
        return value ? "true" : "false";
      case "number":
        if (!Number.isFinite(value)) this.fail(String(value));
        return JSON.stringify(value);
      case "object":
        return value === null ? "null" : this.writeObject(value);
      default:
        return this.fail(`a ${typeof value}`);
    }
  }

  private writeObject(value: object): string {
    if (this.ancestors.length >= MAX_CANONICAL_DEPTH) this.fail(`nesting deeper than ${MAX_CANONICAL_DEPTH}`);
    if (this.ancestors.includes(value)) this.fail("a cycle");
    this.ancestors.push(value);
    let out: string;
    if (Array.isArray(value)) {
      out = "[";
      for (let i = 0; i < value.length; i++) {
        this.path.push(i);
        const item: unknown = value[i];
        if (item === undefined) this.fail("undefined");
        out += (i === 0 ? "" : ",") + this.write(item);
        this.path.pop();
      }
      out += "]";
    } else {
      out = this.writeRecord(value);
    }
    this.ancestors.pop();
    return out;
  }

  private writeRecord(value: object): string {
    const toJson = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJson === "function") {
      this.ancestors.pop(); // toJSON's result replaces the value; it is not its own ancestor
      const replaced = this.write(toJson.call(value));
      this.ancestors.push(value);
      return replaced;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) this.fail(`an instance of ${describeClass(value)}`);
    const record = value as Record<string, unknown>;
    let out = "{";
    let first = true;
    for (const key of sortKeys(Object.keys(record))) {
      const item = record[key];
      if (item === undefined) continue;
      this.path.push(key);
      out += `${first ? "" : ","}${quote(key)}:${this.write(item)}`;
      this.path.pop();
      first = false;
    }
    return `${out}}`;
  }

  private fail(what: string): never {
    const path = `$${this.path.map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`)).join("")}`;
    throw new HangarError("HANGAR_AUDIT_INVALID_ENTRY", `${path}: ${what} cannot be stored in the audit log`, { data: { path } });
  }
}

// Strings without quotes, backslashes, control characters or surrogates come out of
// JSON.stringify unchanged between quotes; skipping the call for them halves the cost.
// eslint-disable-next-line no-control-regex -- control characters are exactly what needs escaping
const PLAIN_STRING = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

function quote(text: string): string {
  return PLAIN_STRING.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** UTF-16 code unit order, as Array#sort's default; insertion sort is faster for the few keys a record has. */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

function describeClass(value: object): string {
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === "string" && ctor.name !== "" ? ctor.name : "a class";
}
