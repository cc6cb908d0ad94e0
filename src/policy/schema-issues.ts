import type { z } from "zod";
import { knownKeysAt } from "./known-keys.js";
import type { IssuePath, PolicyIssue } from "./policy-issue.js";
import { suggestKey } from "./suggest-key.js";
import type { YamlLocator } from "./yaml-locator.js";

type ZodIssue = z.core.$ZodIssue;

/**
 * Turns zod's issues into positioned policy issues. Schema messages written for humans
 * are kept; zod's generic ones ("Invalid input: ...") are rewritten to say what was found.
 * `knownKeys` lists the keys a mapping accepts, for "did you mean" (the policy's by default).
 */
export function schemaIssues(issues: readonly ZodIssue[], locator: YamlLocator, file: string, knownKeys: KnownKeys = knownKeysAt): PolicyIssue[] {
  const all = issues.flatMap((issue) => fromZodIssue(issue, locator, file, knownKeys));
  // "unknown key perMinut; did you mean perMinute?" already says perMinute is missing.
  const suggested = new Set(all.flatMap((i) => (i.suggestion !== undefined ? [pathKey([...i.path.slice(0, -1), i.suggestion])] : [])));
  return all.filter((i) => !(i.missing && suggested.has(pathKey(i.path)))).map(({ suggestion: _s, missing: _m, ...issue }) => issue);
}

/** The keys a mapping at `path` accepts. */
export type KnownKeys = (path: IssuePath) => readonly string[];

type DraftIssue = PolicyIssue & { readonly suggestion?: string; readonly missing?: boolean };

const pathKey = (path: IssuePath): string => JSON.stringify(path);

function fromZodIssue(issue: ZodIssue, locator: YamlLocator, file: string, knownKeys: KnownKeys): DraftIssue[] {
  const path = issue.path.filter((s): s is string | number => typeof s !== "symbol");
  const make = (p: IssuePath, message: string, target: "value" | "key" = "value"): DraftIssue => {
    const { line, col } = locator.at(p, target);
    return { file, line, col, path: p, message, severity: "error", code: issue.code };
  };

  // A required key that is absent: zod says "expected number, received undefined".
  const last = path.at(-1);
  const typeLike = issue.code === "invalid_type" || issue.code === "invalid_value" || issue.code === "invalid_union";
  if (typeLike && typeof last === "string" && !locator.at(path).found && isMapping(locator.valueAt(path.slice(0, -1)))) {
    return [{ ...make(path, `missing required key ${JSON.stringify(last)}`), missing: true }];
  }

  switch (issue.code) {
    case "unrecognized_keys": {
      // One issue per key, positioned on the key itself.
      const known = knownKeys(path);
      return issue.keys.map((key) => {
        const suggestion = suggestKey(key, known);
        return { ...make([...path, key], unknownKeyMessage(key, known, suggestion), "key"), ...(suggestion !== undefined ? { suggestion } : {}) };
      });
    }
    case "invalid_key": {
      const inner = issue.issues[0]?.message;
      return [make(path, inner ?? `${JSON.stringify(path.at(-1))} is not a valid key here`, "key")];
    }
    case "invalid_type":
      return [make(path, isGeneric(issue.message) ? `expected ${describeExpected(issue.expected)}, got ${describeValue(locator.valueAt(path))}` : issue.message)];
    case "invalid_union": {
      if (!isGeneric(issue.message)) return [make(path, issue.message)];
      const expected = [...new Set(issue.errors.flatMap((branch) => branch.filter((i) => i.code === "invalid_type" && i.path.length === 0).map((i) => describeExpected((i as { expected: string }).expected))))];
      const got = describeValue(locator.valueAt(path));
      return [make(path, expected.length > 0 ? `expected ${expected.join(" or ")}, got ${got}` : `${got} is not valid here`)];
    }
    default:
      return [make(path, issue.message)];
  }
}

function unknownKeyMessage(key: string, known: readonly string[], suggestion: string | undefined): string {
  if (suggestion !== undefined) return `unknown key ${JSON.stringify(key)}; did you mean ${JSON.stringify(suggestion)}?`;
  return known.length > 0 ? `unknown key ${JSON.stringify(key)}; expected one of ${known.join(", ")}` : `unknown key ${JSON.stringify(key)}`;
}

function isGeneric(message: string): boolean {
  return message.startsWith("Invalid input");
}

function isMapping(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const EXPECTED: Readonly<Record<string, string>> = {
  object: "a mapping (key: value lines)",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean (true or false)",
};

function describeExpected(expected: string): string {
  return EXPECTED[expected] ?? expected;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
