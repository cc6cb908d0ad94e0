import type { AuditRecord, ApprovalData, EgressData, LifecycleData, PolicyData, ToolCallData } from "./audit-record.js";
import type { JsonObject, JsonValue } from "./canonical-json.js";

/**
 * Audit records as OCSF 1.3.0 events, for SIEMs. The mapping is deliberately small; every
 * Hangar field without an obvious OCSF home goes under `unmapped.hangar`, along with the
 * record's seq and hashes so an exported event can be traced back to the signed log.
 *
 *   tool-call            → API Activity (6003), activity 99 "Invoke"; api.operation = tool,
 *                          api.service.name = server, actor.user = identity
 *   egress, type egress  → Network Activity (4001): decide+block → 5 Refuse, other decides
 *                          → 1 Open, close → 2 Close (4 Fail when it carries an error)
 *   egress, type dns     → DNS Activity (4003), activity 1 Query
 *   lifecycle            → Application Lifecycle (6002): 3 Start, 4 Stop, 5 Restart, 99 Other
 *   approval, policy     → Base Event (0), activity 99 Other: OCSF has no class for them
 * See src/audit/README.md for the field-by-field table.
 */
export const OCSF_VERSION = "1.3.0";

export type OcsfEvent = JsonObject;

export interface OcsfOptions {
  readonly logId: string;
  readonly productVersion?: string;
}

const SEVERITY = { informational: [1, "Informational"], medium: [3, "Medium"] } as const;

export function toOcsf(record: AuditRecord, options: OcsfOptions): OcsfEvent {
  switch (record.kind) {
    case "tool-call":
      return toolCall(record, record.data as unknown as ToolCallData, options);
    case "egress": {
      const data = record.data as unknown as EgressData;
      return data.event.type === "dns" ? dnsActivity(record, data, options) : networkActivity(record, data, options);
    }
    case "lifecycle":
      return lifecycle(record, record.data as unknown as LifecycleData, options);
    case "approval":
    case "policy":
      return baseEvent(record, record.data as unknown as ApprovalData | PolicyData, options);
  }
}

interface ClassInfo {
  readonly categoryUid: number;
  readonly categoryName: string;
  readonly classUid: number;
  readonly className: string;
  readonly activityId: number;
  readonly activityName: string;
  readonly severity: keyof typeof SEVERITY;
}

function envelope(record: AuditRecord, c: ClassInfo, options: OcsfOptions, profiles: readonly string[] = []): JsonObject {
  const [severityId, severity] = SEVERITY[c.severity];
  return {
    category_uid: c.categoryUid,
    category_name: c.categoryName,
    class_uid: c.classUid,
    class_name: c.className,
    activity_id: c.activityId,
    activity_name: c.activityName,
    type_uid: c.classUid * 100 + c.activityId,
    type_name: `${c.className}: ${c.activityName}`,
    time: Date.parse(record.ts),
    severity_id: severityId,
    severity,
    metadata: {
      version: OCSF_VERSION,
      product: { name: "Hangar", vendor_name: "Hangar", ...(options.productVersion !== undefined ? { version: options.productVersion } : {}) },
      uid: `${options.logId}:${record.seq}`,
      log_name: "hangar-audit",
      original_time: record.ts,
      ...(profiles.length > 0 ? { profiles: [...profiles] } : {}),
    },
  };
}

function trace(record: AuditRecord, extra: JsonObject = {}): JsonObject {
  return { hangar: { kind: record.kind, seq: record.seq, hash: record.hash, prevHash: record.prevHash, ...extra } };
}

function defined(entries: Record<string, JsonValue | undefined>): JsonObject {
  return Object.fromEntries(Object.entries(entries).filter((e): e is [string, JsonValue] => e[1] !== undefined));
}

function toolCall(record: AuditRecord, d: ToolCallData, options: OcsfOptions): OcsfEvent {
  const failed = d.outcome !== "ok";
  const refused = d.outcome === "denied" || d.outcome === "withheld";
  return {
    ...envelope(record, { categoryUid: 6, categoryName: "Application Activity", classUid: 6003, className: "API Activity", activityId: 99, activityName: "Invoke", severity: refused ? "medium" : "informational" }, options),
    actor: defined({ user: { name: d.identity, uid: d.identity }, session: d.session !== undefined ? { uid: d.session } : undefined }),
    api: {
      operation: d.tool,
      service: { name: d.server },
      request: { uid: d.callId },
      response: defined({ code: failed ? 1 : 0, error: failed ? d.outcome : undefined, error_message: d.error }),
    },
    // The gateway does not see client addresses; the session is the best source identity it has.
    src_endpoint: d.session !== undefined ? { uid: d.session } : { name: "unknown" },
    dst_endpoint: { svc_name: d.server },
    status_id: failed ? 2 : 1,
    status: failed ? "Failure" : "Success",
    status_detail: d.outcome,
    duration: Math.round(d.durationMs),
    unmapped: trace(record, defined({ arguments: d.arguments, result: d.result as JsonObject | undefined })),
  };
}

function egressVerdict(d: EgressData): { actionId: number; action: string; severity: ClassInfo["severity"] } {
  const blocked = d.event.verdict === "block";
  return { actionId: blocked ? 2 : 1, action: blocked ? "Denied" : "Allowed", severity: d.event.verdict === "allow" ? "informational" : "medium" };
}

function egressUnmapped(record: AuditRecord, d: EgressData): JsonObject {
  const e = d.event;
  return trace(record, defined({
    verdict: e.verdict,
    reasons: [...e.reasons],
    rule: e.rule,
    path: e.path,
    sni: e.sni,
    host: e.host,
    connect: e.connect,
    method: e.method,
    url: e.url,
    pathTemplate: e.pathTemplate,
    queryKeys: e.queryKeys === undefined ? undefined : [...e.queryKeys],
    bodyKind: e.bodyKind,
    bodyFields: e.bodyFields === undefined ? undefined : [...e.bodyFields],
    bodyNotInspected: e.bodyNotInspected,
    drift: d.drift === undefined ? undefined : [...d.drift],
    driftFields: e.driftFields === undefined ? undefined : [...e.driftFields],
    error: e.error,
    eventId: e.id,
    attribution: d.attribution.calls.map((c) => defined({ callId: c.callId, tool: c.tool, identity: c.identity, session: c.session })),
  }));
}

function networkActivity(record: AuditRecord, d: EgressData, options: OcsfOptions): OcsfEvent {
  const e = d.event;
  const v = egressVerdict(d);
  const [activityId, activityName] = e.phase === "close" ? (e.error !== undefined ? [4, "Fail"] : [2, "Close"]) : e.verdict === "block" ? [5, "Refuse"] : [1, "Open"];
  return {
    ...envelope(record, { categoryUid: 4, categoryName: "Network Activity", classUid: 4001, className: "Network Activity", activityId, activityName, severity: v.severity }, options, ["security_control"]),
    src_endpoint: defined({ svc_name: d.server, ip: e.client }),
    dst_endpoint: defined({ hostname: e.name, ip: e.ip, port: e.port }),
    connection_info: { protocol_name: "tcp", protocol_num: 6, direction_id: 2, direction: "Outbound" },
    ...(e.bytesUp !== undefined || e.bytesDown !== undefined ? { traffic: defined({ bytes_out: e.bytesUp, bytes_in: e.bytesDown }) } : {}),
    ...(e.durationMs !== undefined ? { duration: Math.round(e.durationMs) } : {}),
    action_id: v.actionId,
    action: v.action,
    status_id: activityId === 4 || activityId === 5 ? 2 : 1,
    status: activityId === 4 || activityId === 5 ? "Failure" : "Success",
    unmapped: egressUnmapped(record, d),
  };
}

function dnsActivity(record: AuditRecord, d: EgressData, options: OcsfOptions): OcsfEvent {
  const e = d.event;
  const v = egressVerdict(d);
  return {
    ...envelope(record, { categoryUid: 4, categoryName: "Network Activity", classUid: 4003, className: "DNS Activity", activityId: 1, activityName: "Query", severity: v.severity }, options, ["security_control"]),
    src_endpoint: defined({ svc_name: d.server, ip: e.client }),
    query: defined({ hostname: e.name ?? "", type: e.recordType }),
    // A blocked name is answered NXDOMAIN by the sidecar; for others the answer is not logged.
    ...(e.verdict === "block" ? { rcode_id: 3, rcode: "NXDomain" } : {}),
    action_id: v.actionId,
    action: v.action,
    unmapped: egressUnmapped(record, d),
  };
}

function lifecycle(record: AuditRecord, d: LifecycleData, options: OcsfOptions): OcsfEvent {
  const [activityId, activityName] = /restart/i.test(d.action) ? [5, "Restart"] : /start|ready/i.test(d.action) ? [3, "Start"] : /stop|dead|exit|closed/i.test(d.action) ? [4, "Stop"] : [99, d.action];
  return {
    ...envelope(record, { categoryUid: 6, categoryName: "Application Activity", classUid: 6002, className: "Application Lifecycle", activityId, activityName, severity: "informational" }, options),
    app: { name: d.server },
    message: `${d.server}: ${d.action}${d.state !== undefined ? ` (${d.state})` : ""}`,
    unmapped: trace(record, defined({ action: d.action, state: d.state, detail: d.detail })),
  };
}

function baseEvent(record: AuditRecord, d: ApprovalData | PolicyData, options: OcsfOptions): OcsfEvent {
  const data = record.data as JsonObject;
  return {
    ...envelope(record, { categoryUid: 0, categoryName: "Uncategorized", classUid: 0, className: "Base Event", activityId: 99, activityName: `${record.kind} ${d.action}`, severity: "informational" }, options),
    message: [record.kind, d.action, d.server, d.identity !== undefined ? `by ${d.identity}` : undefined].filter((x) => x !== undefined).join(" "),
    unmapped: trace(record, { data }),
  };
}
