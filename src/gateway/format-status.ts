import type { Approval } from "../core/gateway/approvals.js";
import { describeSource } from "../core/gateway/source-pins.js";
import type { ApprovalReview } from "./approval-review.js";
import type { FleetStatus } from "./fleet-status.js";

/** Plain-text tables for `hangar status` and `hangar approve list`. Pure. */

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `${l}\n`).join("");
}

export function formatFleetStatus(status: FleetStatus, running: boolean): string {
  const where = status.endpoint.url ?? status.endpoint.kind;
  const head = running
    ? `gateway pid ${status.pid} serving ${where} since ${status.startedAt} (${status.launcher.kind}${status.launcher.sandboxed ? "" : ", UNSANDBOXED"}); updated ${status.updatedAt}\n`
    : `gateway pid ${status.pid} is not running${status.stoppedAt !== undefined ? ` (stopped ${status.stoppedAt})` : " (it did not shut down cleanly)"}; last status ${status.updatedAt}\n`;
  const rows = status.servers.map((s) => [
    s.name,
    s.state,
    s.uptimeMs !== undefined ? formatDuration(s.uptimeMs) : "-",
    `${s.calls.total} (${s.calls.ok} ok, ${s.calls.error} err, ${s.calls.denied} denied${s.calls.withheld > 0 ? `, ${s.calls.withheld} withheld` : ""}${s.calls.unavailable > 0 ? `, ${s.calls.unavailable} unavail` : ""})`,
    `${s.egress.allow}/${s.egress.flag}/${s.egress.block}/${s.egress["would-block"]}`,
    `${s.approval}${s.drift !== undefined ? "+drift" : ""}`,
    s.breaker,
    s.lastError !== undefined ? `${s.lastError.at} ${clip(s.lastError.message, 100)}` : "-",
  ]);
  return head + table(["SERVER", "STATE", "UPTIME", "CALLS", "EGRESS a/f/b/wb", "APPROVAL", "BREAKER", "LAST ERROR"], rows);
}

export function formatApprovals(approvals: readonly Approval[], inForce: ReadonlySet<string>, reviews: ReadonlyMap<string, ApprovalReview> = new Map()): string {
  if (approvals.length === 0) return "no approvals yet; request one with: hangar approve request <policy file>\n";
  const flaggedCell = (a: Approval): string => {
    const r = reviews.get(a.id);
    if (r === undefined || r.manifest === "unknown" || r.manifest === "stale") return "-";
    if (r.flagged.length === 0) return "none";
    return `${r.flagged.length} tool${r.flagged.length === 1 ? "" : "s"}${r.granted.length > 0 ? ` (${r.granted.length} granted)` : ""}`;
  };
  const rows = approvals.map((a) => [
    a.id,
    a.server,
    `${a.status}${inForce.has(a.id) ? " (in force)" : a.status === "granted" ? " (superseded)" : ""}`,
    `${a.requestedBy} ${a.requestedAt}`,
    a.decidedBy !== undefined ? `${a.decidedBy} ${a.decidedAt ?? ""}${a.reason !== undefined ? ` (${clip(a.reason, 60)})` : ""}` : "-",
    describeSource(a.pins.source),
    a.pins.manifest !== undefined ? `${a.pins.manifest.digest.slice(0, 12)}… (${Object.keys(a.pins.manifest.tools).length} tools)` : "pinned at first start",
    flaggedCell(a),
  ]);
  return table(["ID", "SERVER", "STATUS", "REQUESTED", "DECIDED", "SOURCE", "MANIFEST", "FLAGGED"], rows) + formatReviews(approvals, reviews);
}

/**
 * The manifest scan's findings under the table, per approval: every string in them came
 * from the server, and excerpts have their invisible and control characters escaped.
 */
function formatReviews(approvals: readonly Approval[], reviews: ReadonlyMap<string, ApprovalReview>): string {
  const out: string[] = [];
  for (const a of approvals) {
    const r = reviews.get(a.id);
    if (r === undefined || r.flagged.length === 0) continue;
    const from = r.manifest === "pinned" ? "the manifest pinned" : "the manifest cached from an earlier run (not pinned yet)";
    out.push("", `${a.id} ${a.server}: the manifest scan flagged ${r.flagged.length} tool${r.flagged.length === 1 ? "" : "s"} in ${from}`);
    const rows = r.findings.map((f) => [`  ${f.tool}${r.granted.includes(f.tool) ? " (granted)" : ""}`, f.code, f.severity, f.path, f.cue, JSON.stringify(f.excerpt)]);
    out.push(table(["  TOOL", "CODE", "SEVERITY", "PATH", "CUE", "EXCERPT"], rows).trimEnd());
    if (r.ungranted.length > 0) {
      out.push(
        a.status === "pending" || a.status === "granted"
          ? `  withheld until granted per tool (ENFORCING): hangar approve grant ${a.id} --tools ${r.ungranted.join(",")}${a.status === "pending" ? " --by <identity>" : ""}`
          : `  not granted: ${r.ungranted.join(", ")}`,
      );
    }
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
