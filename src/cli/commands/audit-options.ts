import { AUDIT_KINDS, isAuditKind, type AuditKind } from "../../core/audit/audit-record.js";
import { parseTimeBound } from "../../core/audit/time-bound.js";
import { DEFAULT_AUDIT_DB, type RecordFilter } from "../../audit/index.js";
import { existsSync } from "node:fs";
import { loadHangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import type { OptionSpec } from "../define-command.js";
import { usageError } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

/** Options shared by the audit verbs, so --db, --config and the filters read the same everywhere. */
export const DB_OPTION = {
  type: "string",
  valueName: "<path>",
  description: `The audit log (default: audit.path of the Hangar configuration, else ${DEFAULT_AUDIT_DB}).`,
} as const satisfies OptionSpec;

export { CONFIG_OPTION };

/**
 * The audit log a verb reads: --db, else hangar.yaml's audit.path (resolved against hangar.yaml),
 * else the default. The keys and anchor sit beside it (auditPaths), where the gateway writes them.
 * A config named by --config or HANGAR_CONFIG must exist; ./hangar.yaml is used only when present.
 */
export async function auditDbFrom(values: { readonly db?: string | undefined; readonly config?: string | undefined }): Promise<string> {
  if (values.db !== undefined) return values.db;
  if (values.config !== undefined) return (await loadHangarConfigPaths(values.config)).auditPath;
  if (existsSync(DEFAULT_CONFIG)) return (await loadHangarConfigPaths(DEFAULT_CONFIG)).auditPath;
  return DEFAULT_AUDIT_DB;
}

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
