import { describe, expect, it } from "vitest";
import { canonicalJson, MAX_CANONICAL_DEPTH } from "../../src/core/audit/canonical-json.js";
import { isHangarError } from "../../src/core/errors.js";

function failure(value: unknown): { code: string; message: string } {
  try {
    canonicalJson(value);
  } catch (err) {
    if (isHangarError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("expected canonicalJson to throw");
}

describe("canonicalJson", () => {
  it("sorts keys at every depth and writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "x" } })).toBe('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  });

  it("orders keys by UTF-16 code units, as RFC 8785 does", () => {
    expect(canonicalJson({ "\u00e9": 1, z: 2, Z: 3, "10": 4, "9": 5, "\ud83d\ude00": 6, "\ufb01": 7 })).toBe('{"10":4,"9":5,"Z":3,"z":2,"é":1,"😀":6,"ﬁ":7}');
  });

  it("writes strings and numbers as JSON.stringify does", () => {
    const samples = ["plain", 'q"uote', "back\\slash", "tab\tnew\nline", "\u0001", "é😀", "\ud800 lone", 0, -0, 1.5, 1e21, 2 ** 53, -1e-7];
    for (const s of samples) expect(canonicalJson(s)).toBe(JSON.stringify(s));
  });

  it("is stable across a JSON.parse round trip (what verify relies on)", () => {
    const value = { kind: "x", list: [1, "two", { three: 3, "a b": [] }], nested: { "\u2028": "sep", n: -0.000001 }, t: new Date(0) };
    const once = canonicalJson(value);
    expect(canonicalJson(JSON.parse(once))).toBe(once);
  });

  it("omits undefined properties and applies toJSON, like JSON.stringify", () => {
    expect(canonicalJson({ a: undefined, b: 1, when: new Date("2025-01-01T00:00:00Z") })).toBe('{"b":1,"when":"2025-01-01T00:00:00.000Z"}');
  });

  it("keeps a __proto__ key from parsed JSON as data", () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":2}'))).toBe('{"__proto__":{"x":1},"a":2}');
  });

  it("refuses what JSON cannot carry, naming where it is", () => {
    expect(failure({ a: [1, Number.NaN] })).toEqual({ code: "HANGAR_AUDIT_INVALID_ENTRY", message: "$.a[1]: NaN cannot be stored in the audit log" });
    expect(failure({ n: Infinity }).message).toBe("$.n: Infinity cannot be stored in the audit log");
    expect(failure({ f: () => 1 }).message).toBe("$.f: a function cannot be stored in the audit log");
    expect(failure({ b: 10n }).message).toBe("$.b: a bigint cannot be stored in the audit log");
    expect(failure([undefined]).message).toBe("$[0]: undefined cannot be stored in the audit log");
    expect(failure({ m: new Map() }).message).toBe("$.m: an instance of Map cannot be stored in the audit log");
  });

  it("refuses cycles and excessive depth instead of overflowing", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    expect(failure(cyclic).message).toBe("$.self: a cycle cannot be stored in the audit log");
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH + 1; i++) deep = [deep];
    expect(failure(deep).message).toMatch(/nesting deeper than 64/);
  });

  it("accepts the same object twice when it is not a cycle", () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});
