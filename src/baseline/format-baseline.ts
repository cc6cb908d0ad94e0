import type { Baseline, BaselineTool } from "../core/baseline/baseline-schema.js";
import { alignRows, humanBytes, plural, printable } from "./text-table.js";

/** The readable summary printed by `hangar baseline show`. Pure. */
function reaches(t: BaselineTool): string {
  const parts = [
    ...(t.destinations.length > 0 ? [`reaches ${t.destinations.join(", ")}`] : []),
    ...(t.sharedDestinations.length > 0 ? [`in flight while others reached ${t.sharedDestinations.join(", ")}`] : []),
  ];
  return parts.length > 0 ? parts.join("; ") : "makes no connections";
}

export function formatBaseline(b: Baseline): string {
  const lines: string[] = [];
  const status = b.status === "frozen" ? `frozen at ${b.frozenAt ?? "?"}` : "learning (not used for drift until frozen)";
  lines.push(`Baseline for ${b.server}: ${status}; rate tolerance ${b.rateTolerance}x`);
  const o = b.observed;
  const span = o.from !== undefined && o.to !== undefined ? `from ${o.from} to ${o.to} (${plural(o.minutes, "minute")})` : "nothing yet";
  lines.push(`Observed ${span}: ${plural(o.events, "event")}, ${plural(o.toolCalls, "tool call")}`);

  const tools = (names: readonly string[]): string => (names.length === 0 ? "outside any tool call" : `from ${names.join(", ")}`);

  lines.push("", `Destinations (${b.destinations.length})`);
  if (b.destinations.length === 0) lines.push("  none: the server made no connections");
  lines.push(
    ...alignRows(
      b.destinations.map((d) => [
        `${d.name}:${d.port}`,
        d.protocols.join(",") || "-",
        `${plural(d.count, "connection")}, at most ${d.perMinute.max} a minute (p95 ${d.perMinute.p95}), ${humanBytes(d.bytesUp)} up, ${humanBytes(d.bytesDown)} down; ${tools(d.tools)}`,
      ]),
    ),
  );

  const routes = b.destinations.flatMap((d) => (d.requests ?? []).map((r) => ({ ...r, destination: `${d.name}:${d.port}` })));
  if (routes.length > 0) {
    lines.push("", `HTTP requests (${plural(routes.length, "route")}; names only, never values)`);
    for (const r of routes) {
      lines.push(`  ${r.destination} ${r.method} ${r.path}: ${plural(r.count, "request")}; ${tools(r.tools)}`);
      lines.push(`    body: ${r.bodies.join(", ")}${r.bodyFields.length > 0 ? `; fields ${r.bodyFields.join(", ")}` : ""}`);
      if (r.queryKeys.length > 0) lines.push(`    query keys: ${r.queryKeys.join(", ")}`);
      if (r.headerNames.length > 0) lines.push(`    headers: ${r.headerNames.join(", ")}`);
    }
  }

  lines.push("", `DNS lookups (${b.dns.length})`);
  if (b.dns.length === 0) lines.push("  none");
  lines.push(...alignRows(b.dns.map((e) => [e.name, e.type, `${plural(e.count, "query", "queries")}; ${tools(e.tools)}`])));

  lines.push("", `Tools (${b.tools.length})`);
  if (b.tools.length === 0) lines.push("  none called");
  lines.push(
    ...alignRows(
      b.tools.map((t) => [
        t.name,
        `${plural(t.calls, "call")}, ${t.perMinute.mean} a minute on average (p95 ${t.perMinute.p95}, max ${t.perMinute.max}); ${reaches(t)}`,
      ]),
    ),
  );

  if (b.tunnelling.length > 0) {
    lines.push("", `DNS tunnelling signals (${b.tunnelling.length})`);
    lines.push(
      ...alignRows(
        b.tunnelling.map((t) => [
          t.rule,
          `${t.signals.join(", ")}: ${plural(t.count, "query", "queries")} for ${plural(t.names, "name")}${t.examples.length > 0 ? ` such as ${t.examples[0]!}` : ""}; ${tools(t.tools)}`,
        ]),
      ),
    );
  }
  // Names come from the sandbox: escape control characters before they reach a terminal.
  return `${lines.map(printable).join("\n")}\n`;
}
