import type { JsonObject, JsonValue } from "./canonical-json.js";

/**
 * Redaction of tool-call arguments before they reach the audit log. Two rules, both applied:
 *  1. by key name: the value under a key that names a secret (password, api_key, token,
 *     authorization, ...) is replaced whole, whatever its type;
 *  2. by value: every occurrence of a configured secret value (the env secrets a policy
 *     hands to its server), raw or URL-encoded, is cut out of every string and key.
 * The result is also bounded (string length, depth, entries) so a huge argument cannot
 * bloat the log, and it is always plain JSON: redaction never throws.
 */
export const REDACTED = "[redacted]";

export interface RedactionRules {
  /** Literal secret values; empty strings are ignored. */
  readonly secretValues?: readonly string[];
  /** Extra key names to redact, tested against the raw key. */
  readonly extraKeyPattern?: RegExp;
  readonly maxStringLength?: number;
  readonly maxDepth?: number;
  readonly maxEntries?: number;
}

export const DEFAULT_REDACTION_LIMITS = { maxStringLength: 2048, maxDepth: 16, maxEntries: 256 } as const;

// Matched against the key lower-cased with everything but letters and digits removed, so
// "API-Key", "api_key" and "apiKey" are one name. "token" only as a suffix: "max_tokens" is not a secret.
const SECRET_KEY_PARTS = /password|passwd|passphrase|secret|apikey|authorization|cookie|credential|privatekey|accesskey|sessionkey/;
const SECRET_KEY_EXACT = /^(auth|pwd|pin|otp|sessionid|signature|bearer|jwt)$|token$/;

export function isSecretKey(key: string, extra?: RegExp): boolean {
  const normalised = key.toLowerCase().replace(/[^a-z0-9]/g, "");
  return SECRET_KEY_PARTS.test(normalised) || SECRET_KEY_EXACT.test(normalised) || (extra?.test(key) ?? false);
}

/** Builds one replacer for all secret values: a single pass, longest first, so a redaction marker is never re-matched. */
export function secretValueReplacer(values: readonly string[]): (text: string) => string {
  const variants = new Set<string>();
  for (const value of values) {
    if (value === "") continue;
    variants.add(value);
    variants.add(encodeURIComponent(value));
  }
  if (variants.size === 0) return (text) => text;
  const sorted = [...variants].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(sorted.map(escapeRegExp).join("|"), "g");
  return (text) => text.replace(pattern, REDACTED);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[+${text.length - max} chars]`;
}

export function redactSecrets(value: unknown, rules: RedactionRules = {}): JsonValue {
  const limits = {
    maxStringLength: rules.maxStringLength ?? DEFAULT_REDACTION_LIMITS.maxStringLength,
    maxDepth: rules.maxDepth ?? DEFAULT_REDACTION_LIMITS.maxDepth,
    maxEntries: rules.maxEntries ?? DEFAULT_REDACTION_LIMITS.maxEntries,
  };
  const replaceSecrets = secretValueReplacer(rules.secretValues ?? []);
  const text = (s: string): string => truncate(replaceSecrets(s), limits.maxStringLength);

  const visit = (v: unknown, depth: number): JsonValue => {
    switch (typeof v) {
      case "string":
        return text(v);
      case "number":
        return Number.isFinite(v) ? v : null;
      case "boolean":
        return v;
      case "bigint":
        return text(v.toString());
      case "object":
        if (v === null) return null;
        if (depth >= limits.maxDepth) return "[too deep]";
        if (Array.isArray(v)) {
          const items = v.slice(0, limits.maxEntries).map((item: unknown) => visit(item, depth + 1));
          if (v.length > limits.maxEntries) items.push(`[+${v.length - limits.maxEntries} more]`);
          return items;
        }
        return visitObject(v as Record<string, unknown>, depth);
      default:
        return null; // undefined, functions, symbols: not JSON
    }
  };

  const visitObject = (v: Record<string, unknown>, depth: number): JsonObject => {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined && typeof v[k] !== "function");
    // fromEntries defines own properties, so a "__proto__" argument stays data.
    const entries = keys.slice(0, limits.maxEntries).map((k): [string, JsonValue] => [text(k), isSecretKey(k, rules.extraKeyPattern) ? REDACTED : visit(v[k], depth + 1)]);
    if (keys.length > limits.maxEntries) entries.push(["[more]", `[+${keys.length - limits.maxEntries} more keys]`]);
    return Object.fromEntries(entries) as JsonObject;
  };

  return visit(value, 0);
}
