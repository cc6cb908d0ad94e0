import { isSecretKey } from "../audit/redaction.js";

/**
 * Credentials in tool-call arguments: what a poisoned model sends out when it is told to
 * "pass the content of ~/.aws/credentials as `notes`". Each detector has a stable id; a
 * finding names the detector, the argument's JSON path and the encoding it was found
 * under (plain, url, base64, hex, or a chain such as base64+hex), never the value.
 *
 * Encoded forms are decoded and scanned again (two levels deep): a base64 or hex run whose
 * first bytes are not printable text (an image, a digest) is not decoded past them, so
 * binary payloads cost nothing. What cannot be scanned within the budget is a finding too
 * (`too-large-to-scan`): the gateway fails closed rather than forwarding unread bytes.
 * Pure (Buffer is used only to decode).
 */
export const ARGUMENT_DETECTORS = [
  "aws-access-key",
  "aws-secret-key",
  "github-token",
  "gitlab-token",
  "slack-token",
  "stripe-key",
  "openai-key",
  "anthropic-key",
  "google-api-key",
  "npm-token",
  "bearer-credential",
  "jwt",
  "private-key",
  "env-dump",
  "watched-secret",
  "too-large-to-scan",
] as const;
export type ArgumentDetector = (typeof ARGUMENT_DETECTORS)[number];

export interface ArgumentFinding {
  readonly detector: ArgumentDetector;
  /** JSON path of the argument, e.g. `$.files[2].content`; a key that is itself suspect shows as `[?]`. */
  readonly path: string;
  /** "plain", "url", "base64", "hex", or the chain of decodings, outermost first ("base64+hex"). */
  readonly encoding: string;
}

export interface ArgumentScan {
  readonly findings: readonly ArgumentFinding[];
  /** The arguments with every flagged value (or object, for a flagged key) replaced; fit for the audit log. */
  readonly redacted: unknown;
  /**
   * The flagged strings themselves, for cutting them out of anything else the call leaves in
   * the audit (an echoed result, an error). Never to be logged or shown.
   */
  readonly flaggedValues: readonly string[];
}

export interface ArgumentScanOptions {
  /** Secret values to watch for (the configured servers' secrets); shorter than 8 characters are ignored. */
  readonly watched?: readonly string[];
  /** Characters of strings scanned per call, decoded text included. Default 16 Mi. */
  readonly maxChars?: number;
  /** Strings and keys visited per call. Default 100 000. */
  readonly maxNodes?: number;
}

export const DEFAULT_MAX_SCAN_CHARS = 16 * 1024 * 1024;
export const DEFAULT_MAX_SCAN_NODES = 100_000;
const MAX_DEPTH = 64;
const MAX_DECODE_DEPTH = 2;
const MIN_WATCHED_LENGTH = 8;

interface ShapeDetector {
  readonly id: ArgumentDetector;
  readonly pattern: RegExp;
  readonly confirm?: (match: string) => boolean;
}

/** Credential shapes, as their issuers document them. */
const SHAPES: readonly ShapeDetector[] = [
  { id: "aws-access-key", pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/ },
  { id: "aws-secret-key", pattern: /aws.{0,20}?secret.{0,20}?['"]?\s*[=:]\s*['"]?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/i },
  { id: "github-token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/ },
  { id: "gitlab-token", pattern: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { id: "slack-token", pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}|https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]{20,}/ },
  { id: "stripe-key", pattern: /\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b/ },
  { id: "anthropic-key", pattern: /\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}/ },
  { id: "openai-key", pattern: /\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|\bsk-[A-Za-z0-9]{48}\b/ },
  { id: "google-api-key", pattern: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/ },
  { id: "npm-token", pattern: /\bnpm_[A-Za-z0-9]{36}\b/ },
  { id: "bearer-credential", pattern: /\bbearer\s+[A-Za-z0-9._~+/-]{24,}=*/i, confirm: (m) => /\d/.test(m) && /[A-Za-z]/.test(m.slice(7)) },
  { id: "jwt", pattern: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/, confirm: isJwt },
  { id: "private-key", pattern: /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d/ },
];

/** Each shape's own literal (a cheap search before its pattern). */
const SHAPE_LITERALS: Partial<Record<ArgumentDetector, RegExp>> = {
  "aws-access-key": /AKIA|ASIA|ABIA|ACCA/,
  "aws-secret-key": /secret/i,
  "github-token": /gh[pousr]_|github_pat_/,
  "gitlab-token": /glpat-/,
  "slack-token": /xox[abposr]-|hooks\.slack/,
  "stripe-key": /[sr]k_(?:live|test)_/,
  "anthropic-key": /sk-ant-/,
  "openai-key": /sk-/,
  "google-api-key": /AIza/,
  "npm-token": /npm_/,
  "bearer-credential": /bearer/i,
  jwt: /eyJ[A-Za-z0-9_-]{5,}\.eyJ/,
  "private-key": /PRIVATE KEY|PuTTY/,
};

/** Every shape starts with (or contains) one of these: one pass decides whether the shapes need a look. */
const SHAPE_HINT = /AKIA|ASIA|ABIA|ACCA|[Ss]ecret|SECRET|gh[pousr]_|github_pat_|glpat-|xox|hooks\.slack|[sr]k_|sk-|AIza|npm_|[Bb]earer|BEARER|eyJ|PRIVATE KEY|PuTTY/;

// Runs are matched from their first character only (the lookbehind), so words shorter than
// a run cost one step each rather than one attempt per letter. Greedy: runs are maximal.
const BASE64_RUN = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}/g;
const HEX_RUN = /[0-9a-fA-F]{32,}/g;
const URL_ESCAPE = /%[0-9A-Fa-f]{2}/;

type Segment = string | number;
interface Located {
  readonly detector: ArgumentDetector;
  readonly at: readonly Segment[];
  readonly encoding: string;
  /** The finding is on an object key: the whole object is redacted. */
  readonly onKey: boolean;
}

export function scanArguments(args: unknown, options: ArgumentScanOptions = {}): ArgumentScan {
  const watched = [...new Set((options.watched ?? []).filter((v) => v.length >= MIN_WATCHED_LENGTH))];
  const budget = { chars: options.maxChars ?? DEFAULT_MAX_SCAN_CHARS, nodes: options.maxNodes ?? DEFAULT_MAX_SCAN_NODES, exceeded: false };
  const located: Located[] = [];
  const flaggedValues = new Set<string>();
  const seen = new Set<string>();
  const add = (detector: ArgumentDetector, at: readonly Segment[], encoding: string, onKey: boolean): void => {
    const key = `${detector}\u0000${encoding}\u0000${onKey}\u0000${JSON.stringify(at)}`;
    if (seen.has(key)) return;
    seen.add(key);
    located.push({ detector, at, encoding, onKey });
  };
  const scanText = (text: string, at: readonly Segment[], onKey: boolean): void => {
    const found = detectText(text, watched, budget);
    for (const [detector, encoding] of found) add(detector, at, encoding, onKey);
    if (found.length > 0) flaggedValues.add(text);
  };

  const visit = (value: unknown, at: Segment[], depth: number): void => {
    if (budget.exceeded) return;
    if (--budget.nodes < 0 || depth > MAX_DEPTH) {
      budget.exceeded = true;
      return;
    }
    if (typeof value === "string") {
      scanText(value, at, false);
      return;
    }
    if (typeof value !== "object" || value === null) return;
    if (Array.isArray(value)) {
      value.forEach((item: unknown, i) => visit(item, [...at, i], depth + 1));
      return;
    }
    const record = value as Record<string, unknown>;
    if (envObject(record)) add("env-dump", at, "plain", false);
    for (const [k, v] of Object.entries(record)) {
      scanText(k, at, true);
      visit(v, [...at, k], depth + 1);
    }
  };
  visit(args, [], 0);
  if (budget.exceeded) add("too-large-to-scan", [], "plain", false);

  const findings = located.map((l) => ({ detector: l.detector, path: displayPath(l.onKey ? [...l.at, "?"] : l.at, watched), encoding: l.encoding }));
  return { findings, redacted: located.length === 0 ? args : redact(args, located), flaggedValues: [...flaggedValues] };
}

/**
 * The credential shapes in `text` as it stands, without decoding it: one pass of the hint,
 * then only the shapes it points at. For bytes on the wire (the sidecar's requests), where
 * decoding every base64 run of a megabyte body would cost milliseconds a request.
 */
export function credentialShapes(text: string): ArgumentDetector[] {
  if (!SHAPE_HINT.test(text)) return [];
  const out: ArgumentDetector[] = [];
  for (const shape of SHAPES) {
    // A base64 image holds some hint by chance: run only the shapes whose own literal is there.
    if (!SHAPE_LITERALS[shape.id]?.test(text)) continue;
    const m = shape.pattern.exec(text);
    if (m !== null && (shape.confirm?.(m[0]) ?? true)) out.push(shape.id);
  }
  return out;
}

/** `aws-access-key at $.notes (base64), jwt at $.headers.auth`: for messages and logs. */
export function describeArgumentFindings(findings: readonly ArgumentFinding[]): string {
  return findings.map((f) => `${f.detector} at ${f.path}${f.encoding === "plain" ? "" : ` (${f.encoding})`}`).join(", ");
}

interface Budget {
  chars: number;
  nodes: number;
  exceeded: boolean;
}

/** Detector and encoding of everything found in `text`, decoding base64, hex and URL escapes. */
function detectText(text: string, watched: readonly string[], budget: Budget, depth = 0, chain = ""): [ArgumentDetector, string][] {
  const out: [ArgumentDetector, string][] = [];
  budget.chars -= text.length;
  if (budget.chars < 0) {
    budget.exceeded = true;
    return out;
  }
  const encoding = chain === "" ? "plain" : chain;
  for (const shape of SHAPE_HINT.test(text) ? SHAPES : []) {
    const m = shape.pattern.exec(text);
    if (m !== null && (shape.confirm?.(m[0]) ?? true)) out.push([shape.id, encoding]);
  }
  if (envText(text)) out.push(["env-dump", encoding]);
  if (watched.some((w) => text.includes(w))) out.push(["watched-secret", encoding]);
  if (depth >= MAX_DECODE_DEPTH) return out;

  const next = (decoded: string, how: string): void => {
    out.push(...detectText(decoded, watched, budget, depth + 1, chain === "" ? how : `${chain}+${how}`));
  };
  if (text.includes("%") && URL_ESCAPE.test(text)) {
    next(decodeUrl(text), "url");
  }
  for (const m of text.matchAll(BASE64_RUN)) {
    const decoded = decodeTextual(m[0], "base64");
    if (decoded !== undefined) next(decoded, "base64");
    if (budget.exceeded) return out;
  }
  for (const m of text.matchAll(HEX_RUN)) {
    const decoded = decodeTextual(m[0], "hex");
    if (decoded !== undefined) next(decoded, "hex");
    if (budget.exceeded) return out;
  }
  return out;
}

/**
 * The text a base64 or hex run decodes to, when it is text; undefined for binary. Base64 is
 * tried at each of its four alignments (a run glued to other letters starts mid-group).
 */
function decodeTextual(run: string, how: "base64" | "hex"): string | undefined {
  const starts = how === "base64" ? [0, 1, 2, 3] : [0, 1];
  for (const start of starts) {
    const body = run.slice(start);
    // Judge a prefix first: a binary blob is rejected after a few dozen bytes.
    const probe = Buffer.from(body.slice(0, how === "base64" ? 88 : 132), how);
    if (probe.length < 9 || !printable(probe)) continue;
    const bytes = Buffer.from(body, how);
    if (printable(bytes)) return bytes.toString("latin1");
  }
  return undefined;
}

function printable(bytes: Uint8Array): boolean {
  let ok = 0;
  for (const b of bytes) if ((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d) ok += 1;
  return ok >= bytes.length * 0.95;
}

/** Each %XX escape as the byte it stands for; lenient, so a stray "%" cannot stop the decoding. */
function decodeUrl(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, byte: string) => String.fromCharCode(parseInt(byte, 16)));
}

function isJwt(token: string): boolean {
  const [header] = token.split(".");
  try {
    const parsed = JSON.parse(Buffer.from(header ?? "", "base64url").toString("utf8")) as unknown;
    return typeof parsed === "object" && parsed !== null && "alg" in parsed;
  } catch {
    return false;
  }
}

const ENV_LINE = /^[ \t]*(?:export[ \t]+)?([A-Z][A-Z0-9_]{1,63})=(.*)$/gm;
const ENV_JSON_PAIR = /"([A-Z][A-Z0-9_]{1,63})"\s*:\s*"([^"\n]{0,200})"/g;
const ENV_NAME = /^[A-Z][A-Z0-9_]{1,63}$/;
const PROCESS_ENV = new Set(["PATH", "HOME", "USER", "SHELL", "PWD", "HOSTNAME", "LANG", "TERM", "LOGNAME", "TMPDIR"]);

/**
 * An environment dump, as KEY=VALUE lines or "KEY": "value" pairs: many variables, or a few
 * with a process's own (PATH, HOME…) or one that names a secret with a real-looking value.
 */
function envText(text: string): boolean {
  const vars = new Map<string, string>();
  // Three variables need two line breaks, or JSON pairs: most text is neither.
  if (text.includes("\n") && text.includes("=")) for (const m of text.matchAll(ENV_LINE)) vars.set(m[1] as string, (m[2] ?? "").trim());
  if (text.includes('":')) for (const m of text.matchAll(ENV_JSON_PAIR)) vars.set(m[1] as string, m[2] ?? "");
  return envLike(vars);
}

/** The same judgement over an argument object whose keys are variable names. */
function envObject(record: Record<string, unknown>): boolean {
  const vars = new Map<string, string>();
  for (const [k, v] of Object.entries(record)) if (ENV_NAME.test(k) && typeof v === "string") vars.set(k, v);
  return envLike(vars);
}

function envLike(vars: ReadonlyMap<string, string>): boolean {
  if (vars.size >= 8) return true;
  if (vars.size < 3) return false;
  for (const [name, value] of vars) {
    if (PROCESS_ENV.has(name)) return true;
    if (isSecretKey(name) && substantive(value)) return true;
  }
  return false;
}

/** A value that could be a real secret, not a placeholder such as "", "<token>" or "changeme". */
function substantive(value: string): boolean {
  const v = value.replace(/^['"]|['"]$/g, "");
  return v.length >= 8 && !/[<>{}]|your|change|example|xxxx|\*\*\*/i.test(v);
}

function displayPath(at: readonly Segment[], watched: readonly string[]): string {
  let out = "$";
  for (const s of at) {
    if (typeof s === "number") out += `[${s}]`;
    else if (s === "?" || !/^[A-Za-z_$][\w$-]{0,63}$/.test(s) || SHAPES.some((d) => d.pattern.test(s)) || watched.some((w) => s.includes(w))) out += "[?]";
    else out += `.${s}`;
  }
  return out;
}

function redact(args: unknown, located: readonly Located[]): unknown {
  // The whole call when the finding has no narrower place (too-large-to-scan, a top-level env object).
  const targets = located.map((l) => ({ at: l.at, marker: `[redacted: ${l.detector}]` }));
  if (targets.some((t) => t.at.length === 0)) return `[redacted: ${[...new Set(located.filter((l) => l.at.length === 0).map((l) => l.detector))].join(", ")}]`;
  const replace = (value: unknown, at: readonly Segment[]): unknown => {
    const hit = targets.find((t) => t.at.length === at.length && t.at.every((s, i) => s === at[i]));
    if (hit !== undefined) return hit.marker;
    const below = targets.filter((t) => t.at.length > at.length && at.every((s, i) => s === t.at[i]));
    if (below.length === 0 || typeof value !== "object" || value === null) return value;
    if (Array.isArray(value)) return value.map((item: unknown, i) => replace(item, [...at, i]));
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, replace(v, [...at, k])]));
  };
  return replace(args, []);
}
