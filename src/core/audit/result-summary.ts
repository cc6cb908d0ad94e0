import type { ResultSummary } from "./audit-record.js";
import { secretValueReplacer, truncate } from "./redaction.js";

/**
 * A tool result as the audit log keeps it: its shape (content types, text size, error flag)
 * and a short redacted preview, never the content itself. Results can be large and can
 * carry the very data an incident is about; the log says that it flowed, not what it was.
 */
export const DEFAULT_PREVIEW_LENGTH = 200;

export function summariseResult(result: unknown, options: { secretValues?: readonly string[]; previewLength?: number } = {}): ResultSummary {
  const r = (typeof result === "object" && result !== null ? result : {}) as { content?: unknown; isError?: unknown };
  const content = Array.isArray(r.content) ? (r.content as unknown[]) : [];
  const contentTypes: Record<string, number> = {};
  const texts: string[] = [];
  for (const item of content) {
    const type = typeof item === "object" && item !== null && typeof (item as { type?: unknown }).type === "string" ? (item as { type: string }).type : "unknown";
    contentTypes[type] = (contentTypes[type] ?? 0) + 1;
    const text = (item as { text?: unknown } | null)?.text;
    if (typeof text === "string") texts.push(text);
  }
  const joined = texts.join("\n");
  const summary: ResultSummary = {
    isError: r.isError === true,
    contentTypes,
    textBytes: Buffer.byteLength(joined, "utf8"),
  };
  if (joined === "") return summary;
  const secrets = options.secretValues ?? [];
  const limit = options.previewLength ?? DEFAULT_PREVIEW_LENGTH;
  // Redact before cutting, so a secret across the cut cannot leak half of itself. Only the
  // head is redacted: a secret that starts inside the preview ends within `margin` of it.
  const margin = Math.max(0, ...secrets.map((s) => encodeURIComponent(s).length));
  const head = secretValueReplacer(secrets)(joined.slice(0, limit + margin));
  const preview = joined.length <= limit + margin ? truncate(head, limit) : `${head.slice(0, limit)}…[+${joined.length - limit} chars]`;
  return { ...summary, preview };
}
