import { AUDIT_KINDS, isAuditKind, type AuditKind } from "../../core/audit/audit-record.js";
import { parseTimeBound } from "../../core/audit/time-bound.js";
import { DEFAULT_AUDIT_DB, type RecordFilter } from "../../audit/index.js";
import type { OptionSpec } from "../define-command.js";
import { usageError } from "../define-command.js";

/** Options shared by the audit verbs, so --db and the filters read the same everywhere. */
export const DB_OPTION = { type: "string", valueName: "<path>", description: `The audit log (default ${DEFAULT_AUDIT_DB}).` } as const satisfies OptionSpec;

export const FILTER_OPTIONS = {
  server: { type: "string", valueName: "<name>", description: "Only records of this server." },
  tool: { type: "string", valueName: "<name>", description: "Only calls of this tool, and egress attributed to them." },
  identity: { type: "string", valueName: "<id>", description: "Only records of this identity (caller, approver), and egress attributed to it." },
  kind: { type: "string", valueName: "<kinds>", description: `Only these kinds, comma-separated: ${AUDIT_KINDS.join(", ")}.` },
  since: { type: "string", valueName: "<time>", description: "From this time on: ISO-8601 (2025-03-01T12:00:00Z) or a duration back (15m, 2h, 7d)." },
  until: { type: "string", valueName: "<time>", description: "Up to this time, inclusive; same forms as --since." },
} as const satisfies Record<string, OptionSpec>;

type FilterValues = { readonly [K in keyof typeof FILTER_OPTIONS]: string | undefined };

export function parseKinds(text: string): AuditKind[] {
  const kinds = text.split(",").map((k) => k.trim()).filter((k) => k !== "");
  const unknown = kinds.filter((k) => !isAuditKind(k));
  if (unknown.length > 0 || kinds.length === 0) throw usageError(`--kind ${JSON.stringify(text)}: expected one or more of ${AUDIT_KINDS.join(", ")}`);
  return kinds as AuditKind[];
}

export function recordFilter(values: FilterValues, nowMs: number): RecordFilter {
  const filter: { -readonly [K in keyof RecordFilter]: RecordFilter[K] } = {};
  if (values.server !== undefined) filter.server = values.server;
  if (values.tool !== undefined) filter.tool = values.tool;
  if (values.identity !== undefined) filter.identity = values.identity;
  if (values.kind !== undefined) filter.kinds = parseKinds(values.kind);
  if (values.since !== undefined) filter.since = parseTimeBound(values.since, nowMs);
  if (values.until !== undefined) filter.until = parseTimeBound(values.until, nowMs);
  return filter;
}
