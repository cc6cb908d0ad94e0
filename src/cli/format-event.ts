import { humanBytes } from "../baseline/text-table.js";
import type { SandboxEvent } from "../runtime/sandbox-events.js";

/**
 * One human-readable line per sidecar or runtime event, for stderr and `hangar events`:
 *
 *   08:16:25 BLOCK  egress evil.test:443 tls (transparent) undeclared-host
 *   08:16:25 ALLOW  dns api.allowed.test A declared-host -> 10.213.0.2
 *   08:16:26 CLOSE  egress api.allowed.test:80 http (transparent) up 120 B, down 3.4 KiB, 35 ms -> 172.18.0.3
 *   08:16:30 WARN   runtime sidecar-exited exitCode=137 restarts=0
 *
 * Names, SNIs, Host headers and errors come from inside the sandbox, i.e. from code we do
 * not trust: control and bidi characters are escaped, whitespace inside a name is too (so
 * a Host header cannot forge the rest of the line), and every field is bounded.
 */

export interface FormatEventOptions {
  /** The time of day in the local zone (default) or in UTC. */
  readonly timeZone?: "local" | "utc";
  /** Prefix the server's name, for streams that mix several servers. */
  readonly showServer?: boolean;
}

const LABEL_WIDTH = 6;
const MAX_TOKEN = 120;
const MAX_TEXT = 240;
const MAX_DETAIL = 300;

// C0/C1 controls, DEL, and invisible format characters (bidi overrides, zero-width ones).
const UNSAFE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;
const escapeChar = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;

function bounded(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Free text (errors, details): printable, one line, bounded. */
function cleanText(value: unknown, max = MAX_TEXT): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return bounded(text.replace(UNSAFE, escapeChar), max);
}

/** One word of the line (a name, an SNI, a Host header): no whitespace either. */
function cleanToken(value: unknown): string {
  return cleanText(value, MAX_TOKEN).replace(/\s/g, escapeChar);
}

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);

function timeOfDay(ts: unknown, zone: "local" | "utc"): string {
  const ms = typeof ts === "string" ? Date.parse(ts) : Number.NaN;
  if (!Number.isFinite(ms)) return cleanToken(ts ?? "?");
  const d = new Date(ms);
  const parts = zone === "utc" ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()] : [d.getHours(), d.getMinutes(), d.getSeconds()];
  return parts.map((p) => String(p).padStart(2, "0")).join(":");
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, "0")}s`;
}

/** `key=value` pairs of a detail object, scalars as they are, anything nested as compact JSON. */
function formatDetail(detail: unknown): string {
  if (detail === null || typeof detail !== "object") return "";
  const pairs = Object.entries(detail as Record<string, unknown>).map(([key, value]) => {
    const shown = typeof value === "string" ? cleanToken(value) : cleanText(value, MAX_TOKEN);
    return `${cleanToken(key)}=${shown}`;
  });
  return bounded(pairs.join(" "), MAX_DETAIL);
}

function reasonsOf(value: unknown): string {
  return Array.isArray(value) && value.length > 0 ? value.map((r) => cleanToken(r)).join(",") : "";
}

type Fields = Readonly<Record<string, unknown>>;

function formatConnection(e: Fields): { label: string; body: string } {
  const name = str(e["name"]);
  const host = str(e["host"]);
  const sni = str(e["sni"]);
  const connect = str(e["connect"]);
  const ip = str(e["ip"]);
  const port = num(e["port"]);
  const destination = `${cleanToken(name ?? host ?? sni ?? ip ?? "?")}${port !== undefined ? `:${port}` : ""}`;
  const parts = [`egress ${destination}`];
  const protocol = str(e["protocol"]);
  if (protocol !== undefined) parts.push(cleanToken(protocol));
  const path = str(e["path"]);
  if (path !== undefined) parts.push(`(${cleanToken(path)})`);

  if (e["phase"] === "close") {
    const traffic: string[] = [];
    const up = num(e["bytesUp"]);
    const down = num(e["bytesDown"]);
    const duration = num(e["durationMs"]);
    if (up !== undefined) traffic.push(`up ${humanBytes(up)}`);
    if (down !== undefined) traffic.push(`down ${humanBytes(down)}`);
    if (duration !== undefined) traffic.push(formatDuration(duration));
    if (traffic.length > 0) parts.push(traffic.join(", "));
  } else {
    const reasons = reasonsOf(e["reasons"]);
    if (reasons !== "") parts.push(reasons);
    const rule = str(e["rule"]);
    if (rule !== undefined && rule !== name) parts.push(`rule=${cleanToken(rule)}`);
  }
  // What else the sidecar saw, when it differs from the destination shown.
  const shownName = name ?? host ?? sni;
  if (sni !== undefined && sni !== shownName) parts.push(`sni=${cleanToken(sni)}`);
  const sameHost = (h: string): boolean => [shownName, `${shownName}:${port}`].includes(h.toLowerCase());
  if (host !== undefined && !sameHost(host)) parts.push(`host=${cleanToken(host)}`);
  if (connect !== undefined && connect !== destination) parts.push(`connect=${cleanToken(connect)}`);
  if (ip !== undefined && shownName !== undefined) parts.push(`-> ${cleanToken(ip)}`);
  const error = e["error"];
  if (error !== undefined) parts.push(`error: ${cleanText(error)}`);
  return { label: e["phase"] === "close" ? "CLOSE" : verdictLabel(e["verdict"]), body: parts.join(" ") };
}

function formatDns(e: Fields): { label: string; body: string } {
  const parts = [`dns ${cleanToken(str(e["name"]) ?? "?")}`];
  const recordType = str(e["recordType"]);
  if (recordType !== undefined) parts.push(cleanToken(recordType));
  const reasons = reasonsOf(e["reasons"]);
  if (reasons !== "") parts.push(reasons);
  const rule = str(e["rule"]);
  if (rule !== undefined && rule !== e["name"]) parts.push(`rule=${cleanToken(rule)}`);
  const ip = str(e["ip"]);
  if (ip !== undefined) parts.push(`-> ${cleanToken(ip)}`);
  const error = e["error"];
  if (error !== undefined) parts.push(`error: ${cleanText(error)}`);
  return { label: e["phase"] === "close" ? "CLOSE" : verdictLabel(e["verdict"]), body: parts.join(" ") };
}

function verdictLabel(verdict: unknown): string {
  return typeof verdict === "string" ? cleanToken(verdict.toUpperCase()) : "?";
}

const WARN_LIFECYCLE = new Set(["reload-failed"]);
const WARN_RUNTIME = new Set(["sidecar-exited", "sidecar-restart-failed", "sidecar-given-up", "server-exited", "cpu-limit-failed"]);

function formatNotice(e: Fields, source: "sidecar" | "runtime"): { label: string; body: string } {
  const action = str(e["action"]) ?? "?";
  const warn = (source === "sidecar" ? WARN_LIFECYCLE : WARN_RUNTIME).has(action);
  const detail = formatDetail(e["detail"]);
  return { label: warn ? "WARN" : "INFO", body: `${source} ${cleanToken(action)}${detail !== "" ? ` ${detail}` : ""}` };
}

export function formatEvent(event: SandboxEvent, options: FormatEventOptions = {}): string {
  // Read as plain fields: events parsed from a log may lack or mistype any of them.
  const e = event as unknown as Fields;
  const type = e["type"];
  const { label, body } =
    type === "egress"
      ? formatConnection(e)
      : type === "dns"
        ? formatDns(e)
        : type === "lifecycle"
          ? formatNotice(e, "sidecar")
          : type === "runtime"
            ? formatNotice(e, "runtime")
            : { label: "?", body: `${cleanToken(type ?? "event")} ${cleanText(event)}` };
  const server = options.showServer === true ? `[${cleanToken(e["server"] ?? "?")}] ` : "";
  return `${timeOfDay(e["ts"], options.timeZone ?? "local")} ${label.padEnd(LABEL_WIDTH)} ${server}${body}`;
}
