import { createPolicyRuleLocator, policyNote, type PolicyRuleSpot } from "../baseline/policy-rule-locator.js";
import { fingerprint, ruleIndex, SARIF_LEVEL, SARIF_SCHEMA, SARIF_VERSION, sarifLocation, sarifRules, sarifText, type SarifResult } from "../baseline/sarif.js";
import { DRIFT_SEVERITY, type DriftCode, type DriftSeverity } from "../core/baseline/drift.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { CapturedAttempt, QuarantineReport } from "./quarantine-report.js";

/**
 * The quarantine report as SARIF 2.1.0: one result per destination the server tried to
 * reach, and one per name it only looked up. A quarantine compares with an empty baseline,
 * so the rules are the drift codes `new-destination` and `new-dns-name`. With a policy
 * file, each result points at the allow entry that admits the destination, or at `egress`
 * when none does; what the policy already admits drops to a note. Pure.
 */
export interface QuarantineSarifOptions {
  /** The policy file quarantined (not the generated one of an npm: or image: target), and its text. */
  readonly policy?: { readonly file: string; readonly text: string; readonly policy: Policy };
  readonly toolVersion?: string;
}

interface Destination {
  readonly key: string;
  readonly name: string;
  readonly port?: number;
  readonly tools: Set<string>;
  /** Also tried outside any tool call (at start-up, from a timer). */
  outside: boolean;
  readonly protocols: Set<string>;
  readonly seen: Set<string>;
  readonly requests: Set<string>;
  count: number;
}

const MAX_LISTED = 3;

export function quarantineReportSarif(report: QuarantineReport, options: QuarantineSarifOptions = {}): string {
  const { policy } = options;
  const at = policy !== undefined ? createPolicyRuleLocator(policy.policy, policy.text) : undefined;
  const destinations = groupByDestination(report);
  const connected = new Set([...destinations.values()].map((d) => d.name));
  const dnsOnly = new Map<string, { types: Set<string>; tools: Set<string>; outside: boolean; count: number }>();
  const lookups = [...report.tools.flatMap((t) => t.dns.map((d) => ({ ...d, tool: t.name }))), ...report.outsideCalls.dns.map((d) => ({ ...d, tool: undefined }))];
  for (const d of lookups) {
    if (connected.has(d.name)) continue;
    const entry = dnsOnly.get(d.name) ?? dnsOnly.set(d.name, { types: new Set(), tools: new Set(), outside: false, count: 0 }).get(d.name)!;
    entry.types.add(d.type);
    if (d.tool !== undefined) entry.tools.add(d.tool);
    else entry.outside = true;
    entry.count += d.count;
  }

  const result = (code: DriftCode, subject: string, message: string, spot: PolicyRuleSpot | undefined, note: string | undefined, properties: Record<string, unknown>): SarifResult => {
    // What the policy already admits (name and port) was expected of the server: a note.
    const admitted = spot?.index !== undefined && spot.coversPort !== false;
    const severity: DriftSeverity = admitted ? "low" : DRIFT_SEVERITY[code];
    return {
      ruleId: code,
      ruleIndex: ruleIndex(code),
      level: SARIF_LEVEL[severity],
      message: { text: message },
      ...(policy !== undefined && spot !== undefined ? { locations: [sarifLocation({ file: policy.file, line: spot.line, column: spot.column, ...(note !== undefined ? { message: note } : {}) })] } : {}),
      partialFingerprints: { "hangarQuarantine/v1": fingerprint(report.server, code, subject) },
      properties: { severity, subject, admittedByPolicy: admitted, ...properties },
    };
  };

  const results: SarifResult[] = [];
  for (const d of [...destinations.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const spot = at?.forDestination(d.name, d.port);
    const tools = [...d.tools].sort();
    const details = [[...d.protocols].sort().join(", "), list([...d.seen].sort()), list([...d.requests].sort()), `${d.count} attempt${d.count === 1 ? "" : "s"}`].filter((s) => s !== "");
    results.push(
      result("new-destination", d.key, `${who(tools, d.outside)} tried to reach ${d.key} (${details.join("; ")})`, spot, spot !== undefined ? policyNote(spot, d.key, d.port) : undefined, {
        kind: "destination",
        tools,
        attempts: d.count,
      }),
    );
  }
  for (const [name, d] of [...dnsOnly].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const spot = at?.forDestination(name);
    const tools = [...d.tools].sort();
    results.push(
      result("new-dns-name", name, `${who(tools, d.outside)} looked up ${name} (${[...d.types].sort().join(", ")}; ${d.count} quer${d.count === 1 ? "y" : "ies"}) and connected to nothing there`, spot, spot !== undefined ? policyNote(spot, name) : undefined, {
        kind: "dns",
        tools,
        queries: d.count,
      }),
    );
  }

  return sarifText({
    $schema: SARIF_SCHEMA,
    version: SARIF_VERSION,
    runs: [
      {
        tool: { driver: { name: "hangar", ...(options.toolVersion !== undefined ? { version: options.toolVersion } : {}), rules: sarifRules() } },
        automationDetails: { id: `hangar-quarantine/${report.server}/` },
        invocations: [{ executionSuccessful: true }],
        results,
        properties: {
          target: report.target,
          server: report.server,
          ...(report.serverInfo !== undefined ? { serverInfo: report.serverInfo } : {}),
          at: report.at,
          capturePorts: report.capturePorts,
          calls: report.calls,
          ...(report.scenario !== undefined ? { scenario: report.scenario } : {}),
          toolsListed: report.summary.toolsListed,
          toolsCalled: report.summary.toolsCalled,
          droppedEvents: report.summary.droppedEvents,
        },
      },
    ],
  });
}

function groupByDestination(report: QuarantineReport): Map<string, Destination> {
  const out = new Map<string, Destination>();
  const add = (a: CapturedAttempt, tool: string | undefined): void => {
    const name = a.name ?? a.ip ?? "(no name)";
    const key = `${name}:${a.port ?? "?"}`;
    const d = out.get(key) ?? out.set(key, { key, name, ...(a.port !== undefined ? { port: a.port } : {}), tools: new Set(), outside: false, protocols: new Set(), seen: new Set(), requests: new Set(), count: 0 }).get(key)!;
    if (tool !== undefined) d.tools.add(tool);
    else d.outside = true;
    d.protocols.add(a.path === "explicit" ? `${a.protocol} via proxy` : a.protocol);
    if (a.sni !== undefined) d.seen.add(`SNI ${a.sni}`);
    if (a.host !== undefined) d.seen.add(`Host ${a.host}`);
    if (a.method !== undefined) d.requests.add(`${a.method} ${a.target ?? ""}`.trim());
    d.count += a.count;
  };
  for (const t of report.tools) for (const a of t.attempts) add(a, t.name);
  for (const a of report.outsideCalls.attempts) add(a, undefined);
  return out;
}

function list(xs: readonly string[]): string {
  return xs.length <= MAX_LISTED ? xs.join(", ") : `${xs.slice(0, MAX_LISTED).join(", ")} and ${xs.length - MAX_LISTED} more`;
}

/** Calls are made one at a time, so several tools here each made the attempt on their own. */
function who(tools: readonly string[], outside: boolean): string {
  const named = tools.length === 0 ? "" : tools.length === 1 ? tools[0]! : `${tools.slice(0, -1).join(", ")} and ${tools.at(-1)!}`;
  if (!outside) return named;
  return named === "" ? "The server (outside any tool call)" : `${named}, and the server outside any tool call,`;
}
