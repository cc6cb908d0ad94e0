import type { ManifestFinding } from "../core/gateway/manifest-scan.js";
import type { CapturedAttempt, DnsLookup, QuarantineReport, ToolCallSummary } from "./quarantine-report.js";

/**
 * The quarantine report as Markdown (the default; also what the terminal shows), HTML (one
 * self-contained page) or JSON. Every string in it came from an untrusted server, so each
 * renderer escapes for its own medium. Pure.
 */
export type ReportFormat = "md" | "html" | "json";

/** The format a report file's extension asks for, or undefined for one we do not write. */
export function reportFormatFor(file: string): ReportFormat | undefined {
  const ext = /\.([a-z]+)$/i.exec(file)?.[1]?.toLowerCase();
  if (ext === "md" || ext === "markdown") return "md";
  if (ext === "html" || ext === "htm") return "html";
  if (ext === "json") return "json";
  return undefined;
}

export function formatQuarantineReport(report: QuarantineReport, format: ReportFormat): string {
  if (format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  return format === "html" ? html(report) : markdown(report);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

interface Row {
  readonly destination: string;
  readonly protocol: string;
  readonly seen: string;
  readonly request: string;
  readonly fields: string;
  readonly count: string;
}

function row(a: CapturedAttempt): Row {
  const seen = [a.sni !== undefined ? `SNI ${a.sni}` : "", a.host !== undefined ? `Host ${a.host}` : "", a.connect !== undefined ? `CONNECT ${a.connect}` : ""].filter(Boolean).join(", ");
  return {
    destination: `${a.name ?? a.ip ?? "(no name)"}:${a.port ?? "?"}`,
    protocol: `${a.protocol}${a.path === "explicit" ? " (via proxy)" : ""}`,
    seen: seen || "-",
    request: a.method !== undefined ? `${a.method} ${a.target ?? ""}`.trim() : "-",
    fields: a.bodyFields !== undefined ? a.bodyFields.join(", ") : a.bodyNotInspected !== undefined ? `(not inspected: ${a.bodyNotInspected})` : "-",
    count: String(a.count),
  };
}

const outcomeText = (c: ToolCallSummary): string =>
  `${c.outcome === "ok" ? "ok" : c.outcome === "tool-error" ? "tool error" : c.outcome === "timeout" ? "timed out" : "protocol error"} in ${c.durationMs} ms${c.detail !== undefined ? `: ${c.detail}` : ""}`;

function headline(r: QuarantineReport): string[] {
  const who = r.serverInfo !== undefined ? `${r.serverInfo.name} ${r.serverInfo.version}` : r.server;
  const how = r.calls === "scenario" ? `calls from scenario ${r.scenario ?? ""}`.trim() : "each tool called once with arguments generated from its input schema";
  const s = r.summary;
  const reached =
    s.destinations.length === 0 && s.dnsNames.length === 0
      ? "It tried to reach nothing."
      : `It tried to reach ${plural(s.destinations.length, "destination")} (${s.destinations.join(", ") || "none"}) and looked up ${plural(s.dnsNames.length, "name")}${s.toolsWithEgress.length > 0 ? `, from ${s.toolsWithEgress.join(", ")}` : ""}.`;
  return [
    `Target: ${r.target} (server ${who}), ${r.at}`,
    `Capture: every name resolved to the sidecar; ${r.capturePorts.length === 1 ? "port" : "ports"} ${r.capturePorts.join(", ")} ${r.capturePorts.length === 1 ? "was" : "were"} listened on; nothing left the sandbox.`,
    `Calls: ${how}. ${plural(s.toolsListed, "tool")} listed, ${s.toolsCalled} called.`,
    reached,
    r.manifestScan.flagged.length === 0
      ? "The manifest scan flagged nothing."
      : `The manifest scan flagged ${plural(r.manifestScan.flagged.length, "tool")} (${r.manifestScan.flagged.join(", ")}): review them before any grant.`,
    ...(s.droppedEvents > 0 ? [`Warning: ${plural(s.droppedEvents, "event")} past the log's limit were not kept.`] : []),
  ];
}

// Markdown: text from the server must not break a table, nor carry links, images or HTML.
const md = (s: string): string =>
  s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, " ")
    .replace(/([\\`*[\]<>|#!])/g, "\\$1");
/** A code span (names, destinations, arguments): literal text; only a pipe needs escaping in a table. */
const code = (s: string): string => `\`${s.replace(/`/g, "'").replace(/[\r\n]+/g, " ").replace(/\|/g, "\\|")}\``;

function mdAttempts(attempts: readonly CapturedAttempt[], dns: readonly DnsLookup[]): string[] {
  const lines: string[] = [];
  if (attempts.length === 0 && dns.length === 0) return ["Tried to reach nothing.", ""];
  if (attempts.length > 0) {
    lines.push("| destination | protocol | SNI / Host | request | body fields | attempts |", "|---|---|---|---|---|---|");
    for (const a of attempts.map(row)) lines.push(`| ${code(a.destination)} | ${a.protocol} | ${code(a.seen)} | ${code(a.request)} | ${code(a.fields)} | ${a.count} |`);
    lines.push("");
  }
  if (dns.length > 0) lines.push(`DNS lookups: ${dns.map((d) => `${code(d.name)} (${d.type}${d.count > 1 ? ` ×${d.count}` : ""})`).join(", ")}`, "");
  return lines;
}

function mdScan(findings: readonly ManifestFinding[]): string[] {
  if (findings.length === 0) return [];
  const lines = ["## Manifest scan", "", "| tool | finding | severity | where | pattern | excerpt |", "|---|---|---|---|---|---|"];
  for (const f of findings) lines.push(`| ${code(f.tool)} | ${f.code} | ${f.severity} | ${code(f.path)} | ${code(f.cue)} | ${code(f.excerpt)} |`);
  return [...lines, ""];
}

function markdown(r: QuarantineReport): string {
  const lines = [`# Quarantine report: ${code(r.server)}`, "", ...headline(r).map(md), ""];
  lines.push("## Summary", "", "| tool | tried to reach |", "|---|---|");
  for (const t of r.tools) {
    const where = [...new Set(t.attempts.map((a) => row(a).destination))];
    const dnsOnly = [...new Set(t.dns.map((d) => d.name))].filter((n) => !where.some((w) => w.startsWith(`${n}:`)));
    const reached = [...where.map(code), ...dnsOnly.map((n) => `${code(n)} (DNS only)`)];
    lines.push(`| ${code(t.name)} | ${reached.length > 0 ? reached.join(", ") : "nothing"} |`);
  }
  lines.push("", ...mdScan(r.manifestScan.findings));
  for (const t of r.tools) {
    lines.push(`## ${code(t.name)}`, "");
    if (t.description !== undefined) lines.push(`${md(t.description)}`, "");
    for (const c of t.calls) lines.push(`- called with ${code(JSON.stringify(c.arguments))}: ${md(outcomeText(c))}`);
    lines.push("", ...mdAttempts(t.attempts, t.dns));
  }
  lines.push("## Outside any tool call", "", ...mdAttempts(r.outsideCalls.attempts, r.outsideCalls.dns));
  return `${lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
}

const h = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

function htmlAttempts(attempts: readonly CapturedAttempt[], dns: readonly DnsLookup[]): string {
  if (attempts.length === 0 && dns.length === 0) return "<p>Tried to reach nothing.</p>";
  const parts: string[] = [];
  if (attempts.length > 0) {
    const rows = attempts.map(row).map((a) => `<tr><td>${h(a.destination)}</td><td>${h(a.protocol)}</td><td>${h(a.seen)}</td><td>${h(a.request)}</td><td>${h(a.fields)}</td><td>${a.count}</td></tr>`);
    parts.push(`<table><thead><tr><th>destination</th><th>protocol</th><th>SNI / Host</th><th>request</th><th>body fields</th><th>attempts</th></tr></thead><tbody>${rows.join("")}</tbody></table>`);
  }
  if (dns.length > 0) parts.push(`<p>DNS lookups: ${dns.map((d) => `${h(d.name)} (${h(d.type)}${d.count > 1 ? ` ×${d.count}` : ""})`).join(", ")}</p>`);
  return parts.join("\n");
}

function htmlScan(findings: readonly ManifestFinding[]): string[] {
  if (findings.length === 0) return [];
  const rows = findings.map((f) => `<tr><td>${h(f.tool)}</td><td>${h(f.code)}</td><td>${h(f.severity)}</td><td>${h(f.path)}</td><td>${h(f.cue)}</td><td><code>${h(f.excerpt)}</code></td></tr>`);
  return [`<section><h2>Manifest scan</h2><table><thead><tr><th>tool</th><th>finding</th><th>severity</th><th>where</th><th>pattern</th><th>excerpt</th></tr></thead><tbody>${rows.join("")}</tbody></table></section>`];
}

function html(r: QuarantineReport): string {
  const sections = r.tools.map((t) => {
    const calls = t.calls.map((c) => `<li>called with <code>${h(JSON.stringify(c.arguments))}</code>: ${h(outcomeText(c))}</li>`).join("");
    return `<section><h2>${h(t.name)}</h2>${t.description !== undefined ? `<p>${h(t.description)}</p>` : ""}<ul>${calls}</ul>\n${htmlAttempts(t.attempts, t.dns)}</section>`;
  });
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>Quarantine report: ${h(r.server)}</title>`,
    "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}code{background:#f4f4f4}</style>",
    "</head><body>",
    `<h1>Quarantine report: ${h(r.server)}</h1>`,
    ...headline(r).map((l) => `<p>${h(l)}</p>`),
    ...htmlScan(r.manifestScan.findings),
    ...sections,
    `<section><h2>Outside any tool call</h2>${htmlAttempts(r.outsideCalls.attempts, r.outsideCalls.dns)}</section>`,
    "</body></html>",
    "",
  ].join("\n");
}
