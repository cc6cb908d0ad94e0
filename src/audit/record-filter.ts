import type { AuditKind } from "../core/audit/audit-record.js";
import type { JsonValue } from "../core/audit/canonical-json.js";

/**
 * Which records a query or export wants. Filters combine with AND. `tool` and `identity`
 * match a tool call's own fields and also the calls an egress record is attributed to, so
 * "what did tool T connect to" and "what did identity I cause" are one filter each.
 */
export interface RecordFilter {
  readonly server?: string;
  readonly tool?: string;
  readonly identity?: string;
  readonly kinds?: readonly AuditKind[];
  /** Inclusive ISO-8601 UTC bounds (see parseTimeBound). */
  readonly since?: string;
  readonly until?: string;
  readonly afterSeq?: number;
  readonly limit?: number;
}

export interface FilterSql {
  readonly where: string;
  readonly params: readonly (string | number)[];
}

/**
 * The part of a filter SQLite can apply: the columns seq, ts and kind, which the hash
 * covers as they are stored, and a prefilter on `data` that only ever lets too much
 * through. Whether `data` matches is decided by matchesData, never by SQLite.
 */
export function filterSql(filter: RecordFilter): FilterSql {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (filter.kinds !== undefined && filter.kinds.length > 0) {
    clauses.push(`kind IN (${filter.kinds.map(() => "?").join(", ")})`);
    params.push(...filter.kinds);
  }
  if (filter.since !== undefined) {
    clauses.push("ts >= ?");
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push("ts <= ?");
    params.push(filter.until);
  }
  if (filter.afterSeq !== undefined) {
    clauses.push("seq > ?");
    params.push(filter.afterSeq);
  }
  for (const wanted of [filter.server, filter.tool, filter.identity]) {
    if (wanted === undefined) continue;
    // Text without a backslash holds every string it parses to as is, between quotes, so a
    // row lacking both cannot match; a row with an escape anywhere is left to matchesData.
    const quoted = JSON.stringify(wanted);
    if (quoted.includes("\\")) continue;
    clauses.push("(instr(data, char(92)) > 0 OR instr(data, ?) > 0)");
    params.push(quoted);
  }
  return { where: clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : "", params };
}

/** True when the filter looks inside `data`, so every row has to be parsed to decide. */
export function filtersData(filter: RecordFilter): boolean {
  return filter.server !== undefined || filter.tool !== undefined || filter.identity !== undefined;
}

/**
 * The filters on `data`, applied to the value JSON.parse makes of the stored text: the
 * value the hash covers. SQLite's json_extract takes the first of duplicate keys where
 * JSON.parse takes the last, so a record with a prepended duplicate key could hide from a
 * filter run in SQL while `verify` still vouched for it.
 */
export function matchesData(kind: string, data: JsonValue, filter: RecordFilter): boolean {
  if (!isObject(data)) return !filtersData(filter);
  if (filter.server !== undefined && data.server !== filter.server) return false;
  if (filter.tool !== undefined && !selfOrAttributed(kind, data, "tool", filter.tool)) return false;
  if (filter.identity !== undefined && !selfOrAttributed(kind, data, "identity", filter.identity)) return false;
  return true;
}

/** Field matched on the record itself or on any attributed call of an egress record. */
function selfOrAttributed(kind: string, data: { readonly [key: string]: JsonValue }, field: "tool" | "identity", wanted: string): boolean {
  if (data[field] === wanted) return true;
  if (kind !== "egress") return false;
  const attribution = data.attribution;
  const calls = isObject(attribution) ? attribution.calls : undefined;
  return Array.isArray(calls) && calls.some((call) => isObject(call) && call[field] === wanted);
}

function isObject(value: JsonValue | undefined): value is { readonly [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
