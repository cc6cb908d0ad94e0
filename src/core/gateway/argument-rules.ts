import { posix } from "node:path";
import { parseIp } from "../ip.js";
import { hostPatternMatches, normaliseHostName, parseHostPattern } from "../names.js";
import { compilePolicy, findCidrRule, findHostRule } from "../policy/compiled-policy.js";
import type { Policy } from "../policy/policy-schema.js";
import { globMatches } from "./glob.js";

/**
 * A server policy's `tools.arguments` rules: which values a tool's arguments may carry.
 *
 *   - tool: read_file          glob over the server's own tool names (default "*")
 *     path: path               JSON path into the arguments: "a.b", "files[*].path", "**.url"
 *     allow: { under: [/data] }
 *   - tool: fetch
 *     path: url
 *     allow: { host: declared }
 *
 * A check block (`allow` or `deny`) describes a set of values: every check it lists must
 * hold (`match`: one of the value globs; `under`: an absolute path inside one of the folders,
 * after `..` and `.` are resolved; `host`: a URL whose host the policy's egress declares, or
 * one of the listed host patterns). Under `allow`, each text or number found at the path (or
 * below it) must be in the set; under `deny`, none may be. A path that matches nothing leaves
 * the rule nothing to check. A violation names the rule and the argument's JSON path, never
 * the value. Pure and bounded: the walk visits at most MAX_NODES nodes, and past that the
 * call is a violation (unread arguments are not trusted).
 */
export interface ArgumentCheck {
  readonly match?: readonly string[];
  readonly under?: readonly string[];
  readonly host?: "declared" | readonly string[];
}

export interface ArgumentRule {
  readonly tool: string;
  readonly path: string;
  readonly allow?: ArgumentCheck;
  readonly deny?: ArgumentCheck;
}

export interface ArgumentRuleViolation {
  /** `tools.arguments[2]`. */
  readonly rule: string;
  /** The argument's JSON path, e.g. `$.files[0].path`; `$` when the call was too large to check. */
  readonly path: string;
  /** Why, without the value: "is not under /data". */
  readonly reason: string;
  /** Where the value sits (keys and indexes), for cutting it out of the audited arguments. */
  readonly at: readonly (string | number)[];
}

export interface ArgumentRuleContext {
  /** Whether the server's egress policy declares this (normalised) host name or IP. */
  readonly declaredHost: (host: string) => boolean;
}

export const MAX_NODES = 100_000;
const MAX_DEPTH = 64;
const MAX_VIOLATIONS = 16;

type Segment = string | number;

/** The segments of a path expression, or a message saying what is wrong with it. */
export function parseArgumentPath(expression: string): { ok: true; segments: readonly string[] } | { ok: false; message: string } {
  let text = expression.trim();
  if (text === "$") return { ok: false, message: "the path must name an argument (for every argument, use \"*\")" };
  if (text.startsWith("$.")) text = text.slice(2);
  else if (text.startsWith("$[")) text = text.slice(1);
  const segments: string[] = [];
  for (const part of text.split(".")) {
    const m = /^([^[\]]*)((?:\[(?:\*|\d+)\])*)$/.exec(part);
    if (m === null) return { ok: false, message: `${JSON.stringify(part)} is not a path segment (a key, "*", "**", or an index like [0] or [*])` };
    const key = m[1] as string;
    const indexes = [...(m[2] ?? "").matchAll(/\[(\*|\d+)\]/g)].map((x) => x[1] as string);
    if (key === "" && indexes.length === 0) return { ok: false, message: `${JSON.stringify(expression)} has an empty segment` };
    if (key !== "") segments.push(key);
    segments.push(...indexes);
  }
  if (segments.length > 32) return { ok: false, message: "a path has at most 32 segments" };
  return { ok: true, segments };
}

/** Every violation of `rules` by a call of `tool` with `args` (at most 16). */
export function checkArgumentRules(rules: readonly ArgumentRule[], tool: string, args: unknown, context: ArgumentRuleContext): ArgumentRuleViolation[] {
  const out: ArgumentRuleViolation[] = [];
  const budget = { nodes: MAX_NODES, exceeded: false };
  rules.forEach((rule, index) => {
    if (out.length >= MAX_VIOLATIONS || budget.exceeded || !globMatches(rule.tool, tool)) return;
    const parsed = parseArgumentPath(rule.path);
    if (!parsed.ok) return; // the policy schema refuses such a rule
    const name = `tools.arguments[${index}]`;
    for (const found of select(args, parsed.segments, budget)) {
      for (const leaf of scalars(found.value, found.at, budget)) {
        const reason = violation(rule, leaf.value, context);
        if (reason !== undefined) out.push({ rule: name, path: displayPath(leaf.at), reason, at: leaf.at });
        if (out.length >= MAX_VIOLATIONS) return;
      }
    }
  });
  if (budget.exceeded) return [...out.slice(0, MAX_VIOLATIONS - 1), { rule: "tools.arguments", path: "$", reason: `is too large to check (more than ${MAX_NODES} nodes or ${MAX_DEPTH} levels)`, at: [] }];
  return out;
}

/** `$.path is not under /data (tools.arguments[0])`, for messages. */
export function describeArgumentViolations(violations: readonly ArgumentRuleViolation[]): string {
  return violations.map((v) => `${v.path} ${v.reason} (${v.rule})`).join("; ");
}

/** `args` with the value at each violation replaced by `[refused: <rule>]`; the whole call when one is at the root. */
export function withoutViolatingValues(args: unknown, violations: readonly ArgumentRuleViolation[]): unknown {
  if (violations.some((v) => v.at.length === 0)) return `[refused: ${violations.map((v) => v.rule).join(", ")}]`;
  const replace = (node: unknown, at: readonly Segment[]): unknown => {
    const hit = violations.find((v) => v.at.length === at.length && v.at.every((s, i) => s === at[i]));
    if (hit !== undefined) return `[refused: ${hit.rule}]`;
    if (!violations.some((v) => v.at.length > at.length && at.every((s, i) => s === v.at[i]))) return node;
    if (Array.isArray(node)) return node.map((item: unknown, i) => replace(item, [...at, i]));
    if (typeof node === "object" && node !== null) return Object.fromEntries(Object.entries(node as Record<string, unknown>).map(([k, v]) => [k, replace(v, [...at, k])]));
    return node;
  };
  return replace(args, []);
}

function violation(rule: ArgumentRule, value: string, context: ArgumentRuleContext): string | undefined {
  if (rule.allow !== undefined) {
    const failed = failedCheck(rule.allow, value, context);
    if (failed !== undefined) return failed;
  }
  if (rule.deny !== undefined && failedCheck(rule.deny, value, context) === undefined) return "matches what the rule denies";
  return undefined;
}

/** The first check of `check` that `value` fails, described; undefined when it passes them all. */
function failedCheck(check: ArgumentCheck, value: string, context: ArgumentRuleContext): string | undefined {
  if (check.under !== undefined && !check.under.some((dir) => isUnder(value, dir))) return `is not under ${check.under.join(" or ")}`;
  if (check.match !== undefined && !check.match.some((g) => globMatches(g, value))) return `matches none of ${check.match.map((g) => JSON.stringify(g)).join(", ")}`;
  if (check.host !== undefined) {
    const host = urlHost(value);
    if (host === undefined) return "is not a URL with a host";
    if (check.host === "declared" ? !context.declaredHost(host) : !check.host.some((p) => matchesHost(p, host))) {
      return check.host === "declared" ? "is a URL whose host the policy's egress does not declare" : `is a URL whose host is not ${check.host.join(" or ")}`;
    }
  }
  return undefined;
}

/** The `declaredHost` of a server's policy: a name one of its egress host rules matches, or an IP inside one of its CIDR rules. */
export function declaredHostCheck(policy: Policy): (host: string) => boolean {
  const compiled = compilePolicy(policy);
  return (host) => {
    const ip = parseIp(host);
    return ip !== undefined ? findCidrRule(compiled, ip) !== undefined : findHostRule(compiled, host) !== undefined;
  };
}

/** An absolute path inside `dir` once `.` and `..` are resolved; a NUL byte or a relative path never is. */
export function isUnder(value: string, dir: string): boolean {
  if (!value.startsWith("/") || value.includes("\0")) return false;
  const path = posix.normalize(value);
  const base = posix.normalize(dir).replace(/\/+$/, "");
  return base === "" || path === base || path.startsWith(`${base}/`);
}

/** The normalised host of a URL (IPv6 without brackets), or undefined when `value` is not one. */
export function urlHost(value: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value.trim())) return undefined;
  try {
    const host = new URL(value.trim()).hostname;
    if (host === "") return undefined;
    if (host.startsWith("[")) return host.slice(1, -1).toLowerCase();
    return normaliseHostName(host) ?? host.toLowerCase();
  } catch {
    return undefined;
  }
}

function matchesHost(pattern: string, host: string): boolean {
  const parsed = parseHostPattern(pattern);
  return parsed !== undefined && hostPatternMatches(parsed, host);
}

interface Found {
  readonly at: readonly Segment[];
  readonly value: unknown;
}

function select(root: unknown, segments: readonly string[], budget: { nodes: number; exceeded: boolean }): Found[] {
  const out: Found[] = [];
  const seen = new Set<unknown>();
  const visit = (node: unknown, at: Segment[], i: number): void => {
    if (budget.exceeded) return;
    if (--budget.nodes < 0 || at.length > MAX_DEPTH) {
      budget.exceeded = true;
      return;
    }
    if (i === segments.length) {
      // `**` can reach one node along several routes: check it once.
      if (typeof node === "object" && node !== null) {
        if (seen.has(node)) return;
        seen.add(node);
      }
      out.push({ at, value: node });
      return;
    }
    const seg = segments[i] as string;
    if (seg === "**") {
      visit(node, at, i + 1);
      for (const [k, child] of children(node)) visit(child, [...at, k], i);
      return;
    }
    for (const [k, child] of children(node)) if (seg === "*" || String(k) === seg) visit(child, [...at, k], i + 1);
  };
  visit(root, [], 0);
  return out;
}

function children(node: unknown): [Segment, unknown][] {
  if (Array.isArray(node)) return node.map((v: unknown, i) => [i, v]);
  if (typeof node === "object" && node !== null) return Object.entries(node as Record<string, unknown>);
  return [];
}

/** Texts and numbers at or below `value`, as text, with their paths. */
function scalars(value: unknown, at: readonly Segment[], budget: { nodes: number; exceeded: boolean }): { at: readonly Segment[]; value: string }[] {
  const out: { at: readonly Segment[]; value: string }[] = [];
  const visit = (node: unknown, path: readonly Segment[]): void => {
    if (budget.exceeded) return;
    if (--budget.nodes < 0 || path.length > MAX_DEPTH) {
      budget.exceeded = true;
      return;
    }
    if (typeof node === "string") out.push({ at: path, value: node });
    else if (typeof node === "number" || typeof node === "bigint") out.push({ at: path, value: String(node) });
    else for (const [k, child] of children(node)) visit(child, [...path, k]);
  };
  visit(value, at);
  return out;
}

function displayPath(at: readonly Segment[]): string {
  let out = "$";
  for (const s of at) out += typeof s === "number" ? `[${s}]` : /^[A-Za-z_$][\w$-]{0,63}$/.test(s) ? `.${s}` : "[?]";
  return out;
}
