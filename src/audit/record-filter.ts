import type { AuditKind } from "../core/audit/audit-record.js";

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

/** Field matched on the record itself or on any attributed call of an egress record. */
function selfOrAttributed(field: "tool" | "identity"): string {
  return `(json_extract(data, '$.${field}') = ? OR (kind = 'egress' AND EXISTS (SELECT 1 FROM json_each(data, '$.attribution.calls') AS c WHERE json_extract(c.value, '$.${field}') = ?)))`;
}

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
  if (filter.server !== undefined) {
    clauses.push("json_extract(data, '$.server') = ?");
    params.push(filter.server);
  }
  if (filter.tool !== undefined) {
    clauses.push(selfOrAttributed("tool"));
    params.push(filter.tool, filter.tool);
  }
  if (filter.identity !== undefined) {
    clauses.push(selfOrAttributed("identity"));
    params.push(filter.identity, filter.identity);
  }
  return { where: clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : "", params };
}
