import { createHash } from "node:crypto";
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { DRIFT_SEVERITY, type DriftCode, type DriftSeverity } from "../core/baseline/drift.js";

/**
 * SARIF 2.1.0 as Hangar writes it (the subset used), and what replay and quarantine share:
 * one rule per drift code, whose id is the code itself so code-scanning alerts follow a code
 * across runs; severities mapped to SARIF levels and to GitHub's `security-severity`;
 * artifact URIs; stable fingerprints. Pure.
 */
export const SARIF_VERSION = "2.1.0";
export const SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

export type SarifLevel = "error" | "warning" | "note";

export const SARIF_LEVEL: Readonly<Record<DriftSeverity, SarifLevel>> = { high: "error", medium: "warning", low: "note" };

/** GitHub code scanning ranks security alerts by this score: 7.0 and up high, 4.0 up medium, below low. */
export const SECURITY_SEVERITY: Readonly<Record<DriftSeverity, string>> = { high: "8.0", medium: "5.5", low: "3.0" };

export interface SarifMessage {
  readonly text: string;
  readonly markdown?: string;
}

export interface SarifRegion {
  readonly startLine: number;
  readonly startColumn: number;
}

export interface SarifLocation {
  readonly id?: number;
  readonly physicalLocation: { readonly artifactLocation: { readonly uri: string }; readonly region: SarifRegion };
  readonly message?: SarifMessage;
}

export interface SarifRule {
  readonly id: DriftCode;
  readonly name: string;
  readonly shortDescription: SarifMessage;
  readonly fullDescription: SarifMessage;
  readonly help: SarifMessage;
  readonly defaultConfiguration: { readonly level: SarifLevel };
  readonly properties: { readonly "security-severity": string; readonly severity: DriftSeverity; readonly tags: readonly string[]; readonly precision: "high" };
}

export interface SarifResult {
  readonly ruleId: DriftCode;
  readonly ruleIndex: number;
  readonly level: SarifLevel;
  readonly message: SarifMessage;
  readonly locations?: readonly SarifLocation[];
  readonly relatedLocations?: readonly SarifLocation[];
  readonly partialFingerprints: Readonly<Record<string, string>>;
  readonly properties: Readonly<Record<string, unknown>>;
}

export interface SarifRun {
  readonly tool: { readonly driver: { readonly name: string; readonly version?: string; readonly informationUri?: string; readonly rules: readonly SarifRule[] } };
  readonly automationDetails: { readonly id: string };
  readonly invocations: readonly { readonly executionSuccessful: boolean }[];
  readonly results: readonly SarifResult[];
  readonly properties: Readonly<Record<string, unknown>>;
}

export interface SarifLog {
  readonly $schema: string;
  readonly version: typeof SARIF_VERSION;
  readonly runs: readonly SarifRun[];
}

/** A spot in a file: where a result applies, and what is there. Lines and columns are 1-based. */
export interface SourceSpot {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message?: string;
}

interface RuleText {
  readonly name: string;
  readonly short: string;
  readonly full: string;
  readonly help: string;
}

// Keyed by string, not DriftCode, so a code added to the core still yields a rule (with
// plain text) until its words are written here; a test checks every code has them.
const RULE_TEXT: Readonly<Record<string, RuleText>> = {
  "new-destination": {
    name: "NewDestination",
    short: "Connection to a destination the baseline never saw",
    full: "The server connected to a name and port its frozen baseline never saw, even if a wildcard in the policy admits it.",
    help: "Find out why the server now reaches this destination. If the change is expected, record and freeze a new baseline; if not, tighten the policy's egress.allow.",
  },
  "new-egress-from-tool": {
    name: "NewEgressFromTool",
    short: "Egress from a tool that made no connections",
    full: "A tool that made no connections in the baseline connected somewhere.",
    help: "A tool that starts talking to the network is a classic sign of a poisoned or compromised server. Check the release notes and the code before accepting it into a new baseline.",
  },
  "dns-tunnelling": {
    name: "DnsTunnelling",
    short: "DNS names that look like tunnelled data",
    full: "The server asked for names under a wildcard that look like data smuggled out through DNS (long or random labels, many new names a minute).",
    help: "Treat as possible exfiltration. Narrow the wildcard to the exact names the server needs.",
  },
  "new-request-field": {
    name: "NewRequestField",
    short: "A request field the baseline never saw on a known route",
    full: "A request on a known destination and route carried a body field, query key or header name the baseline never saw there.",
    help: "A new field on a known call is where data gets smuggled out. Check what the field carries before accepting it into a new baseline.",
  },
  "body-not-inspected": {
    name: "BodyNotInspected",
    short: "A request body that could not be read where bodies were read before",
    full: "A request on a known route had a body the sidecar could not parse, where the baseline had read its fields.",
    help: "An unreadable body hides its fields. Find out why the encoding changed.",
  },
  "new-http-route": {
    name: "NewHttpRoute",
    short: "A request route the baseline never saw on a known destination",
    full: "The server sent a method and path to a known destination that the baseline never saw.",
    help: "Check why the server calls a new endpoint. If expected, record and freeze a new baseline.",
  },
  "new-port": {
    name: "NewPort",
    short: "Connection to a known name on a new port",
    full: "The server connected to a name the baseline knows, on a port the baseline never saw.",
    help: "Check why the port changed. If expected, record and freeze a new baseline.",
  },
  "new-dns-name": {
    name: "NewDnsName",
    short: "DNS lookup of a name the baseline never saw",
    full: "The server looked up a name the baseline never saw, without connecting to it.",
    help: "Lookups alone can carry data out. Check why the server asks for this name.",
  },
  "new-dns-record-type": {
    name: "NewDnsRecordType",
    short: "DNS record type the baseline never saw",
    full: "The server asked for a record type (TXT, MX, ...) of a name the baseline only saw other lookups for.",
    help: "TXT and other record types can carry data. If the lookup is expected, record and freeze a new baseline.",
  },
  "rate-exceeded": {
    name: "RateExceeded",
    short: "Connection or call rate above the baseline's tolerance",
    full: "Connections to a destination, or calls of a tool, came faster than the baseline's rate tolerance allows.",
    help: "A burst can be load or a loop draining data. Compare with the baseline's per-minute maximum.",
  },
  "new-tool": {
    name: "NewTool",
    short: "A tool the baseline never saw",
    full: "A tool the baseline never saw was called (or was in flight during egress).",
    help: "New tools change what a client can ask the server to do. Review the tool before accepting it into a new baseline.",
  },
};

/** Every drift code the core knows, most severe first (the order of the rules array). */
export const RULE_CODES: readonly DriftCode[] = (Object.keys(DRIFT_SEVERITY) as DriftCode[]).sort((a, b) => rank(DRIFT_SEVERITY[b]) - rank(DRIFT_SEVERITY[a]));

export function ruleText(code: DriftCode): RuleText {
  const pascal = code.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
  return RULE_TEXT[code] ?? { name: pascal, short: code, full: `Drift ${code}.`, help: "See the drift's message." };
}

function rank(s: DriftSeverity): number {
  return s === "high" ? 2 : s === "medium" ? 1 : 0;
}

export function sarifRules(): SarifRule[] {
  return RULE_CODES.map((id) => {
    const t = ruleText(id);
    const severity = DRIFT_SEVERITY[id];
    return {
      id,
      name: t.name,
      shortDescription: { text: t.short },
      fullDescription: { text: t.full },
      help: { text: t.help },
      defaultConfiguration: { level: SARIF_LEVEL[severity] },
      properties: { "security-severity": SECURITY_SEVERITY[severity], severity, tags: ["security", "mcp", "egress"], precision: "high" },
    };
  });
}

export function ruleIndex(code: DriftCode): number {
  return RULE_CODES.indexOf(code);
}

/**
 * A file as a URI reference: a relative path stays relative (code scanning resolves it
 * against the checkout, so run the verb from the repository root); an absolute one
 * becomes a file: URI.
 */
export function artifactUri(file: string): string {
  if (isAbsolute(file)) return pathToFileURL(file).href;
  return file
    .split(/[\\/]+/)
    .filter((segment) => segment !== "" && segment !== ".")
    .map(encodeURIComponent)
    .join("/");
}

export function sarifLocation(spot: SourceSpot): SarifLocation {
  return {
    physicalLocation: { artifactLocation: { uri: artifactUri(spot.file) }, region: { startLine: Math.max(1, spot.line), startColumn: Math.max(1, spot.column) } },
    ...(spot.message !== undefined ? { message: { text: spot.message } } : {}),
  };
}

/** The same finding on the same subject gets the same fingerprint in every run, wherever its line moves. */
export function fingerprint(...parts: readonly string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 32);
}

export function sarifText(log: SarifLog): string {
  return `${JSON.stringify(log, null, 2)}\n`;
}
