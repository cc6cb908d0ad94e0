import type { AttributedEgressEvent } from "../core/baseline/observation.js";
import { scanManifest, type ManifestFinding } from "../core/gateway/manifest-scan.js";
import { targetWithoutValues } from "../core/request-shape.js";
import type { CallOutcome, ScenarioRun } from "../replay/scenario-session.js";

/**
 * What a quarantined server tried to reach, per tool: every attempt the sidecar captured
 * (name, port, protocol, TLS SNI or HTTP Host; for a request it saw, its method, URL without
 * query values and body field names, never a value), grouped and counted, and
 * every DNS name it asked. Attempts outside any tool call (at start-up) have their own
 * section. Built from a scenario run; rendered as Markdown, HTML or JSON. Pure.
 */
export interface CapturedAttempt {
  /** The name the sidecar judged (SNI, Host, CONNECT authority), or absent for a bare address. */
  readonly name?: string;
  readonly ip?: string;
  readonly port?: number;
  readonly protocol: string;
  /** transparent (DNS pointed it at the sidecar) or explicit (through HTTP_PROXY). */
  readonly path?: string;
  readonly sni?: string;
  readonly host?: string;
  readonly connect?: string;
  readonly method?: string;
  /** The request target without query values (`/search?q&page`): a path, or a full URL through the explicit proxy. */
  readonly target?: string;
  /** Field paths of the request's JSON or form body (`to`, `attachments[].name`), sorted: names, never values. */
  readonly bodyFields?: readonly string[];
  /** Why the body yielded no fields (too-large, unparseable, unsupported-type, ...), when it had one. */
  readonly bodyNotInspected?: string;
  readonly reasons: readonly string[];
  readonly count: number;
}

export interface DnsLookup {
  readonly name: string;
  readonly type: string;
  readonly count: number;
}

export interface ToolCallSummary {
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly outcome: CallOutcome;
  readonly durationMs: number;
  readonly detail?: string;
}

export interface ToolFindings {
  readonly name: string;
  readonly description?: string;
  readonly calls: readonly ToolCallSummary[];
  readonly attempts: readonly CapturedAttempt[];
  readonly dns: readonly DnsLookup[];
}

export interface QuarantineReport {
  readonly target: string;
  readonly server: string;
  readonly serverInfo?: { readonly name: string; readonly version: string };
  /** ISO time of the first call (or of the report, with no calls). */
  readonly at: string;
  readonly capturePorts: readonly number[];
  /** How the calls were chosen. */
  readonly calls: "scenario" | "generated";
  readonly scenario?: string;
  readonly tools: readonly ToolFindings[];
  /** What the manifest scan flagged in every tool listed (called or not): hidden or manipulative content. */
  readonly manifestScan: { readonly flagged: readonly string[]; readonly findings: readonly ManifestFinding[] };
  /** Egress while no tool call was in flight (start-up, background timers). */
  readonly outsideCalls: { readonly attempts: readonly CapturedAttempt[]; readonly dns: readonly DnsLookup[] };
  readonly summary: {
    readonly toolsListed: number;
    readonly toolsCalled: number;
    readonly toolsWithEgress: readonly string[];
    /** Every distinct `name:port` (or `ip:port`) tried, sorted. */
    readonly destinations: readonly string[];
    readonly dnsNames: readonly string[];
    readonly droppedEvents: number;
  };
}

export interface ReportMeta {
  readonly target: string;
  readonly capturePorts: readonly number[];
  readonly scenario?: string;
  readonly now?: () => number;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function buildQuarantineReport(run: ScenarioRun, meta: ReportMeta): QuarantineReport {
  const decides = run.events.filter((e) => e.phase === "decide");
  const toolsOf = (e: AttributedEgressEvent): readonly string[] => e.attribution?.tools ?? [];
  const listed = new Map(run.tools.map((t) => [t.name, t] as const));
  const called = [...new Set(run.calls.map((c) => c.tool))];
  // Tools in the order listed, then any called that the server did not list.
  const names = [...run.tools.map((t) => t.name).filter((n) => called.includes(n)), ...called.filter((n) => !listed.has(n))];

  const tools: ToolFindings[] = names.map((name) => {
    const mine = decides.filter((e) => toolsOf(e).includes(name));
    const description = listed.get(name)?.description;
    return {
      name,
      ...(description !== undefined ? { description: firstSentence(description) } : {}),
      calls: run.calls
        .filter((c) => c.tool === name)
        .map((c) => ({ arguments: c.arguments, outcome: c.outcome, durationMs: c.endedAt - c.startedAt, ...(c.detail !== undefined ? { detail: c.detail } : {}) })),
      attempts: groupAttempts(mine),
      dns: groupDns(mine),
    };
  });
  const outside = decides.filter((e) => toolsOf(e).length === 0);
  const attempts = groupAttempts(decides);
  const destination = (a: CapturedAttempt): string => `${a.name ?? a.ip ?? "?"}:${a.port ?? "?"}`;
  const firstCall = run.calls[0]?.startedAt ?? (meta.now ?? Date.now)();
  const scan = scanManifest(run.tools, { server: run.server });
  return {
    target: meta.target,
    server: run.server,
    ...(run.serverInfo ? { serverInfo: run.serverInfo } : {}),
    at: new Date(firstCall).toISOString(),
    capturePorts: [...meta.capturePorts].sort((a, b) => a - b),
    calls: meta.scenario !== undefined ? "scenario" : "generated",
    ...(meta.scenario !== undefined ? { scenario: meta.scenario } : {}),
    tools,
    manifestScan: { flagged: scan.flagged, findings: scan.findings },
    outsideCalls: { attempts: groupAttempts(outside), dns: groupDns(outside) },
    summary: {
      toolsListed: run.tools.length,
      toolsCalled: names.length,
      toolsWithEgress: tools.filter((t) => t.attempts.length + t.dns.length > 0).map((t) => t.name),
      destinations: [...new Set(attempts.map(destination))].sort(byText),
      dnsNames: [...new Set(groupDns(decides).map((d) => d.name))].sort(byText),
      droppedEvents: run.droppedEvents,
    },
  };
}

function groupAttempts(events: readonly AttributedEgressEvent[]): CapturedAttempt[] {
  const groups = new Map<string, { attempt: Omit<CapturedAttempt, "count">; count: number }>();
  for (const e of events) {
    if (e.type !== "egress") continue;
    const attempt: Omit<CapturedAttempt, "count"> = {
      ...(e.name !== undefined ? { name: e.name } : {}),
      ...(e.name === undefined && e.ip !== undefined ? { ip: e.ip } : {}),
      ...(e.port !== undefined ? { port: e.port } : {}),
      protocol: e.protocol,
      ...(e.path !== undefined ? { path: e.path } : {}),
      ...(e.sni !== undefined ? { sni: e.sni } : {}),
      ...(e.host !== undefined ? { host: e.host } : {}),
      ...(e.connect !== undefined ? { connect: e.connect } : {}),
      ...(e.method !== undefined ? { method: e.method } : {}),
      ...(e.url !== undefined ? { target: targetWithoutValues(e.url) } : {}),
      ...(e.bodyFields !== undefined && e.bodyFields.length > 0 ? { bodyFields: [...e.bodyFields].sort(byText) } : {}),
      ...(e.bodyKind === "not-inspected" ? { bodyNotInspected: e.bodyNotInspected ?? "unparseable" } : {}),
      reasons: e.reasons.filter((r) => r !== "capture"),
    };
    const key = JSON.stringify(attempt);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { attempt, count: 1 });
    else g.count += 1;
  }
  return [...groups.values()]
    .map((g) => ({ ...g.attempt, count: g.count }))
    .sort((a, b) => byText(a.name ?? a.ip ?? "", b.name ?? b.ip ?? "") || (a.port ?? 0) - (b.port ?? 0) || byText(a.target ?? "", b.target ?? ""));
}

function groupDns(events: readonly AttributedEgressEvent[]): DnsLookup[] {
  const counts = new Map<string, DnsLookup>();
  for (const e of events) {
    if (e.type !== "dns" || e.name === undefined) continue;
    const type = (e.recordType ?? "A").toUpperCase();
    const key = `${e.name} ${type}`;
    const seen = counts.get(key);
    counts.set(key, { name: e.name, type, count: (seen?.count ?? 0) + 1 });
  }
  return [...counts.values()].sort((a, b) => byText(a.name, b.name) || byText(a.type, b.type));
}

function firstSentence(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  const end = line.search(/[.!?](\s|$)/);
  const sentence = end === -1 ? line : line.slice(0, end + 1);
  return sentence.length > 160 ? `${sentence.slice(0, 160)}…` : sentence;
}
