import type { Mode, Policy } from "../policy/policy-schema.js";
import { firstHiddenCharacter, INSTRUCTION_CUES, matchCues, type CueSeverity, type TextCue } from "./injection-cues.js";

/**
 * Tool results scanned for the manifest scan's injection cues: a fetched page or an issue
 * body that tells the model "ignore previous instructions" or "do not tell the user" is the
 * indirect prompt injection that starts a toxic flow. The same patterns as the manifest scan
 * (injection-cues.ts), on the text a model reads: `content[].text`, embedded resources' text
 * and `structuredContent`. Left out on purpose: URLs, shell fragments and sensitive paths,
 * which results carry legitimately (a fetch, a shell tool, a directory listing).
 *
 * A finding names the cue and where it is, never the text. Bounded: at most MAX_RESULT_CHARS
 * characters and MAX_RESULT_NODES nodes are read; past that the result is a finding
 * (`too-large-to-scan`), so `tools.results: strict` never passes unread text. Pure.
 */
export const RESULT_FINDING_CODES = ["RESULT_MODEL_INSTRUCTION", "RESULT_HIDDEN_UNICODE", "RESULT_TOO_LARGE"] as const;
export type ResultFindingCode = (typeof RESULT_FINDING_CODES)[number];

export interface ResultFinding {
  readonly code: ResultFindingCode;
  readonly severity: CueSeverity;
  /** Where in the result: `$.content[0].text`, `$.structuredContent.body`. */
  readonly path: string;
  /** Which pattern: "override-instructions", "bidi-control", "too-large-to-scan". */
  readonly cue: string;
}

export const MAX_RESULT_CHARS = 4 * 1024 * 1024;
export const MAX_RESULT_NODES = 50_000;
const MAX_DEPTH = 64;
const MAX_FINDINGS = 32;

/** Instruction cues that mean something in a result (not "sensitive-path": listings name .env files). */
const RESULT_CUES: readonly TextCue[] = INSTRUCTION_CUES.filter((c) => c.id !== "sensitive-path");

export function scanResult(result: unknown): ResultFinding[] {
  const out: ResultFinding[] = [];
  const seen = new Set<string>();
  const budget = { chars: MAX_RESULT_CHARS, nodes: MAX_RESULT_NODES, exceeded: false };
  const add = (f: ResultFinding): void => {
    const key = `${f.code}\u0000${f.path}\u0000${f.cue}`;
    if (seen.has(key) || out.length >= MAX_FINDINGS) return;
    seen.add(key);
    out.push(f);
  };
  const text = (value: string, path: string): void => {
    budget.chars -= value.length;
    if (budget.chars < 0) {
      budget.exceeded = true;
      return;
    }
    const hidden = firstHiddenCharacter(value);
    if (hidden !== undefined) add({ code: "RESULT_HIDDEN_UNICODE", severity: "high", path, cue: hidden.bidi ? "bidi-control" : "invisible-character" });
    for (const m of matchCues(value, RESULT_CUES)) add({ code: "RESULT_MODEL_INSTRUCTION", severity: m.cue.severity, path, cue: m.cue.id });
  };
  const walk = (node: unknown, path: string, depth: number): void => {
    if (budget.exceeded) return;
    if (--budget.nodes < 0 || depth > MAX_DEPTH) {
      budget.exceeded = true;
      return;
    }
    if (typeof node === "string") text(node, path);
    else if (Array.isArray(node)) node.forEach((item: unknown, i) => walk(item, `${path}[${i}]`, depth + 1));
    else if (typeof node === "object" && node !== null) for (const [k, v] of Object.entries(node as Record<string, unknown>)) walk(v, `${path}${segment(k)}`, depth + 1);
  };
  if (typeof result === "object" && result !== null) {
    const r = result as Record<string, unknown>;
    if (Array.isArray(r["content"])) {
      r["content"].forEach((item: unknown, i) => {
        if (typeof item !== "object" || item === null) return;
        const c = item as Record<string, unknown>;
        // Text a model reads; binary (image, audio, blob) is not text.
        if (typeof c["text"] === "string") text(c["text"], `$.content[${i}].text`);
        const resource = c["resource"];
        if (typeof resource === "object" && resource !== null && typeof (resource as Record<string, unknown>)["text"] === "string") text((resource as Record<string, string>)["text"] as string, `$.content[${i}].resource.text`);
      });
    }
    if (r["structuredContent"] !== undefined) walk(r["structuredContent"], "$.structuredContent", 0);
  }
  if (budget.exceeded) add({ code: "RESULT_TOO_LARGE", severity: "medium", path: "$", cue: "too-large-to-scan" });
  return out;
}

/**
 * What a server policy's `tools.results` (default "flag") makes of one tool result: undefined
 * when it is not scanned or carries nothing; otherwise its findings and the verdict: "flag"
 * (recorded, passed on), "block" (strict, ENFORCING: withheld from the client) or
 * "would-block" (strict, OBSERVING). The one decision `hangar serve` and `hangar run` share.
 */
export type ResultVerdict = "flag" | "block" | "would-block";

export function decideResult(result: unknown, results: Policy["tools"]["results"], mode: Mode): { verdict: ResultVerdict; findings: ResultFinding[] } | undefined {
  const policy = results ?? "flag";
  if (policy === "off") return undefined;
  const findings = scanResult(result);
  if (findings.length === 0) return undefined;
  return { verdict: policy === "flag" ? "flag" : mode === "enforcing" ? "block" : "would-block", findings };
}

/** `RESULT_MODEL_INSTRUCTION at $.content[0].text [override-instructions]`, for messages. */
export function describeResultFindings(findings: readonly ResultFinding[]): string {
  return findings.map((f) => `${f.code} at ${f.path} [${f.cue}]`).join(", ");
}

function segment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : "[?]";
}
