import { credentialShapes, type ArgumentDetector } from "../gateway/argument-scan.js";
import type { Needle, SecretEncoding, SecretWatch } from "./secret-watch.js";

/**
 * What one request the sidecar sees does with the sandbox's secrets. Pure: bytes in,
 * findings out; the sidecar's forwarder feeds it and hands the findings to `decide()`.
 *
 * - A sentinel in its declared header, on an inspected (TLS re-originated) request to its
 *   declared host, is a substitution: that header is rewritten to the format with the value.
 * - A sentinel anywhere else, or an injected secret's value anywhere at all (the server never
 *   held it), is a hard leak.
 * - A watched value (a plain secret, or one the operator lists) anywhere but its own host is
 *   a leak that the mode decides.
 * Findings name the secret, where and how it was found; never the value.
 */
export type LeakPlace = "header" | "url" | "body" | "name";

export interface SecretLeak {
  readonly name: string;
  readonly kind: "sentinel" | "value";
  readonly where: LeakPlace;
  readonly encoding: SecretEncoding;
  /** Blocked in every mode: a sentinel, or the value of a secret the server never held. */
  readonly hard: boolean;
}

export interface RequestSecretsInput {
  /** The destination, normalised. */
  readonly host: string | undefined;
  /** TLS the sidecar terminated and re-originates with verification: the only place a value is written. */
  readonly inspected: boolean;
  readonly rawHeaders: readonly string[];
  readonly target: string;
  readonly body?: Uint8Array;
  /** Also look for well-known credential shapes (inspected traffic). */
  readonly credentials?: boolean;
}

export interface RequestSecrets {
  readonly leaks: readonly SecretLeak[];
  /** Names of the secrets written into this request. */
  readonly injected: readonly string[];
  /** The raw header pairs with the values written in; undefined when nothing was injected. */
  readonly headers?: string[];
  /** Credential shapes found (detector ids), less those the destination is declared for. */
  readonly credentials: readonly ArgumentDetector[];
}

/** The shapes that count as a credential on the wire (the argument scan's others: bearer, env dumps, are ordinary in requests). */
export const WIRE_CREDENTIALS: ReadonlySet<ArgumentDetector> = new Set([
  "aws-access-key",
  "aws-secret-key",
  "github-token",
  "gitlab-token",
  "slack-token",
  "stripe-key",
  "openai-key",
  "anthropic-key",
  "google-api-key",
  "npm-token",
  "jwt",
  "private-key",
]);

const NOTHING: RequestSecrets = { leaks: [], injected: [], credentials: [] };

export function checkRequestSecrets(watch: SecretWatch, input: RequestSecretsInput): RequestSecrets {
  const scanCredentials = input.credentials === true;
  if (watch.needles.length === 0 && !scanCredentials) return NOTHING;
  const leaks: SecretLeak[] = [];
  const injected: string[] = [];
  let headers: string[] | undefined;
  const leak = (n: Needle, where: LeakPlace): void => {
    const s = watch.secrets[n.secret]!;
    // A plain secret's value on its own host is the server using it as intended.
    if (n.kind === "value" && s.inject === undefined && s.host !== undefined && s.host === input.host) return;
    leaks.push({ name: s.name, kind: n.kind, where, encoding: n.encoding, hard: n.kind === "sentinel" || s.inject !== undefined });
  };

  const raw = input.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const value = raw[i + 1]!;
    for (const n of matches(watch.needles, value)) {
      const s = watch.secrets[n.secret]!;
      const inject = s.inject;
      const writable =
        n.kind === "sentinel" && n.encoding === "raw" && inject !== undefined && input.inspected && input.host === inject.host && raw[i]!.toLowerCase() === inject.header.toLowerCase();
      if (!writable) {
        leak(n, "header");
        continue;
      }
      if (s.value === undefined) continue; // capture without credentials: the sentinel goes nowhere anyway
      // The whole header becomes the format: nothing the server put beside the sentinel travels next to the value.
      headers ??= [...raw];
      headers[i + 1] = (inject.format ?? "{}").replace("{}", () => s.value!);
      if (!injected.includes(s.name)) injected.push(s.name);
    }
  }
  for (const n of matches(watch.needles, input.target)) leak(n, "url");
  if (input.body !== undefined && input.body.length > 0) {
    const body = Buffer.isBuffer(input.body) ? input.body : Buffer.from(input.body.buffer, input.body.byteOffset, input.body.byteLength);
    for (const n of watch.needles) if (body.includes(n.bytes)) leak(n, "body");
  }

  let credentials: ArgumentDetector[] = [];
  if (scanCredentials) {
    // Shapes as sent (plain, and the query URL-decoded): decoding every base64 run of a body, as
    // the gateway does for tool arguments, would cost milliseconds per request here.
    const found = new Set<ArgumentDetector>();
    const look = (text: string): void => {
      for (const d of credentialShapes(text)) found.add(d);
    };
    look(input.target.includes("%") ? safeDecode(input.target) : input.target);
    for (let i = 1; i < raw.length; i += 2) look(raw[i]!);
    if (input.body !== undefined && input.body.length > 0) look(Buffer.from(input.body.buffer, input.body.byteOffset, input.body.byteLength).toString("latin1"));
    const declared = input.host === undefined ? undefined : watch.declaredShapes.get(input.host);
    credentials = [...found].filter((d) => WIRE_CREDENTIALS.has(d) && declared?.has(d) !== true);
  }
  return { leaks: dedupe(leaks), injected, ...(headers !== undefined ? { headers } : {}), credentials };
}

/** Leaks in a host name (DNS question, SNI, Host, CONNECT authority): case-folded, labels joined, so a value split across labels is found too. */
export function nameLeaks(watch: SecretWatch, name: string): SecretLeak[] {
  if (watch.needles.length === 0) return [];
  const folded = name.toLowerCase().replaceAll(".", "");
  const out: SecretLeak[] = [];
  for (const n of watch.needles) {
    if (n.folded.length === 0 || !folded.includes(n.folded)) continue;
    const s = watch.secrets[n.secret]!;
    out.push({ name: s.name, kind: n.kind, where: "name", encoding: n.encoding, hard: n.kind === "sentinel" || s.inject !== undefined });
  }
  return dedupe(out);
}

/** `POSTMARK_TOKEN sentinel in body (base64)`: for verdicts and events; never the value. */
export function describeLeak(l: SecretLeak): string {
  return `${l.name} ${l.kind} in ${l.where}${l.encoding === "raw" ? "" : ` (${l.encoding})`}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function matches(needles: readonly Needle[], text: string): Needle[] {
  if (text.length < 8) return [];
  const out: Needle[] = [];
  for (const n of needles) if (text.includes(n.text)) out.push(n);
  return out;
}

function dedupe(leaks: SecretLeak[]): SecretLeak[] {
  const seen = new Set<string>();
  return leaks.filter((l) => {
    const key = describeLeak(l);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
