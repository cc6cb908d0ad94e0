import type { AuditRecord, EgressData, LifecycleData, ToolCallData } from "../../core/audit/audit-record.js";
import type { VerifyReport } from "../../core/audit/chain-verifier.js";

/** Human-readable output of the audit verbs. Pure: data in, text out. */

export function formatVerifyReport(db: string, report: VerifyReport): string {
  const lines: string[] = [];
  const signed = report.signatures === "checked" ? `signed through record ${report.signedThrough} (${report.checkpoints.valid} of ${report.checkpoints.total} checkpoints valid)` : "signatures not checked";
  const anchor = report.anchor === undefined ? "no anchor" : `anchor at record ${report.anchor.seq} ${report.anchor.ok ? "ok" : "INVALID"}`;
  if (report.ok) {
    lines.push(`${db}: intact: ${report.records} records, ${signed}, ${anchor}`);
  } else {
    const first = report.firstProblem;
    lines.push(`${db}: TAMPERED: first bad record is ${first?.seq ?? "?"} (${first?.code ?? "?"})`);
    lines.push(`  ${first?.message ?? ""}`);
    if (report.problems.length > 1) {
      lines.push(`all ${report.problems.length} problems:`);
      for (const p of report.problems) lines.push(`  record ${p.seq}: ${p.code}: ${p.message}`);
    }
    lines.push(`log ${report.logId}: ${report.records} records, ${signed}, ${anchor}`);
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}

const MAX_DETAIL = 160;

function clip(text: string): string {
  return text.length <= MAX_DETAIL ? text : `${text.slice(0, MAX_DETAIL - 1)}…`;
}

/** One line per record: seq, time, kind, then what matters for the kind. */
export function formatRecordLine(record: AuditRecord): string {
  return `${String(record.seq).padStart(6)}  ${record.ts}  ${record.kind.padEnd(9)}  ${clip(describe(record))}`;
}

function describe(record: AuditRecord): string {
  const data = record.data as Record<string, unknown>;
  switch (record.kind) {
    case "tool-call": {
      const d = data as unknown as ToolCallData;
      return `${d.server}/${d.tool} by ${d.identity}: ${d.outcome} in ${d.durationMs}ms${d.error !== undefined ? ` (${d.error})` : ""} args ${JSON.stringify(d.arguments)}`;
    }
    case "egress": {
      const d = data as unknown as EgressData;
      const e = d.event;
      const target = `${e.name ?? e.ip ?? "?"}${e.port !== undefined ? `:${e.port}` : ""}`;
      const calls = d.attribution.calls.map((c) => `${c.tool} by ${c.identity}`).join(", ");
      const bytes = e.phase === "close" ? ` ${e.bytesUp ?? 0}B up ${e.bytesDown ?? 0}B down` : "";
      // The request, by name only: method, path template, and what drifted (or its body's fields).
      const request = e.method !== undefined ? `${e.method} ${e.pathTemplate ?? e.url ?? ""} ` : "";
      const fields = e.driftFields !== undefined && e.driftFields.length > 0 ? ` new ${e.driftFields.join(", ")}` : e.bodyFields !== undefined && e.bodyFields.length > 0 ? ` fields ${e.bodyFields.join(",")}` : "";
      return `${d.server} → ${target} ${e.type === "dns" ? `dns ${e.recordType ?? ""} ` : ""}${request}${e.verdict}${e.phase === "close" ? " closed" : ""} [${e.reasons.join(",")}]${fields}${bytes}${calls !== "" ? ` during ${calls}` : " (no call in flight)"}`;
    }
    case "lifecycle": {
      const d = data as unknown as LifecycleData;
      return `${d.server}: ${d.action}${d.state !== undefined ? ` → ${d.state}` : ""}`;
    }
    default: {
      const { action, server, identity, ...rest } = data;
      return `${String(action)}${server !== undefined ? ` ${String(server)}` : ""}${identity !== undefined ? ` by ${String(identity)}` : ""} ${JSON.stringify(rest)}`;
    }
  }
}
