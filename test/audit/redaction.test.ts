import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { isSecretKey, REDACTED, redactSecrets } from "../../src/core/audit/redaction.js";
import { summariseResult } from "../../src/core/audit/result-summary.js";

describe("redactSecrets by key name", () => {
  it("replaces the whole value under a secret-looking key, whatever its type", () => {
    const args = { query: "weather", api_key: "k-123", apiKey: 42, Authorization: "Bearer x", nested: { password: { a: 1 }, "X-Api-Key": ["a"] }, github_token: "ghp_x", client_secret: "s", cookie: "c=1" };
    expect(redactSecrets(args)).toEqual({ query: "weather", api_key: REDACTED, apiKey: REDACTED, Authorization: REDACTED, nested: { password: REDACTED, "X-Api-Key": REDACTED }, github_token: REDACTED, client_secret: REDACTED, cookie: REDACTED });
  });

  it("leaves keys that only look similar", () => {
    for (const key of ["max_tokens", "tokens", "author", "keyword", "primary_key_column", "path", "message"]) expect(isSecretKey(key)).toBe(false);
    for (const key of ["token", "access_token", "refreshToken", "PASSWORD", "passwd", "private-key", "aws_secret_access_key", "sessionId", "auth"]) expect(isSecretKey(key)).toBe(true);
  });

  it("takes an extra pattern for site-specific names", () => {
    expect(redactSecrets({ pin_code: "1234", ssn: "x" }, { extraKeyPattern: /^ssn$/ })).toEqual({ pin_code: "1234", ssn: REDACTED });
  });
});

describe("redactSecrets by configured secret value", () => {
  const secretValues = ["s3cr3t-value", "p@ss word/+"];

  it("cuts every occurrence out of every string, at any depth, raw or URL-encoded", () => {
    const args = {
      url: `https://api.example.com/?key=${encodeURIComponent("p@ss word/+")}&x=1`,
      body: "prefix s3cr3t-value suffix s3cr3t-value",
      list: [{ deep: ["s3cr3t-value"] }],
      innocent: "nothing here",
    };
    const out = redactSecrets(args, { secretValues });
    expect(out).toEqual({
      url: `https://api.example.com/?key=${REDACTED}&x=1`,
      body: `prefix ${REDACTED} suffix ${REDACTED}`,
      list: [{ deep: [REDACTED] }],
      innocent: "nothing here",
    });
    expect(canonicalJson(out)).not.toMatch(/s3cr3t|p@ss|p%40ss/);
  });

  it("redacts secrets in keys too, and prefers the longest match", () => {
    expect(redactSecrets({ "s3cr3t-value": 1, x: "s3cr3t-value-and-more" }, { secretValues: ["s3cr3t-value", "s3cr3t-value-and-more"] })).toEqual({ [REDACTED]: 1, x: REDACTED });
  });

  it("ignores empty secret values", () => {
    expect(redactSecrets({ a: "text" }, { secretValues: [""] })).toEqual({ a: "text" });
  });

  it("redacts before truncating, so a secret across the cut does not leak half of itself", () => {
    const text = `${"x".repeat(10)}s3cr3t-value${"y".repeat(10)}`;
    const out = redactSecrets({ text }, { secretValues, maxStringLength: 15 }) as { text: string };
    expect(out.text).toBe(`${"x".repeat(10)}[reda…[+${10 + REDACTED.length + 10 - 15} chars]`);
    expect(out.text).not.toContain("s3cr");
  });
});

describe("redactSecrets bounds and shapes", () => {
  it("truncates long strings, deep nesting and long lists", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 5; i++) deep = { d: deep };
    const out = redactSecrets({ long: "a".repeat(50), deep, list: [1, 2, 3, 4, 5] }, { maxStringLength: 10, maxDepth: 4, maxEntries: 3 });
    expect(out).toEqual({ long: `${"a".repeat(10)}…[+40 chars]`, deep: { d: { d: { d: "[too deep]" } } }, list: [1, 2, 3, "[+2 more]"] });
  });

  it("never throws and always returns plain JSON", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic["me"] = cyclic;
    const weird = { big: 10n, nan: Number.NaN, fn: () => 1, undef: undefined, list: [undefined, Symbol("s")], cyclic };
    const out = redactSecrets(weird, { maxDepth: 3 });
    expect(() => canonicalJson(out)).not.toThrow();
    expect(out).toMatchObject({ big: "10", nan: null, list: [null, null], cyclic: { me: { me: "[too deep]" } } });
  });

  it("keeps a __proto__ argument as data without touching prototypes", () => {
    const out = redactSecrets(JSON.parse('{"__proto__":{"polluted":true},"a":1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(["__proto__", "a"]);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });
});

describe("summariseResult", () => {
  it("keeps the shape of a tool result and a redacted preview, not its content", () => {
    const result = { content: [{ type: "text", text: "token is s3cr3t-value, ok" }, { type: "image", data: "AAAA", mimeType: "image/png" }, { type: "text", text: "more" }], isError: false };
    expect(summariseResult(result, { secretValues: ["s3cr3t-value"] })).toEqual({
      isError: false,
      contentTypes: { text: 2, image: 1 },
      textBytes: Buffer.byteLength("token is s3cr3t-value, ok\nmore"),
      preview: `token is ${REDACTED}, ok\nmore`,
    });
  });

  it("bounds the preview and redacts a secret straddling its end", () => {
    const text = `${"a".repeat(195)}s3cr3t-value${"b".repeat(1000)}`;
    const summary = summariseResult({ content: [{ type: "text", text }] }, { secretValues: ["s3cr3t-value"] });
    expect(summary.preview?.startsWith(`${"a".repeat(195)}[red`)).toBe(true);
    expect(summary.preview).not.toContain("s3cr");
    expect(summary.preview).toMatch(/…\[\+\d+ chars\]$/);
  });

  it("copes with results that are not tool results", () => {
    expect(summariseResult(undefined)).toEqual({ isError: false, contentTypes: {}, textBytes: 0 });
    expect(summariseResult({ content: [null, 3], isError: true })).toEqual({ isError: true, contentTypes: { unknown: 2 }, textBytes: 0 });
  });
});
