import { parseAuthority, type Authority } from "../authority.js";

/**
 * Where one HTTP request goes, worked out from what the client sent and the path it came by.
 * Pure: the same rules for the explicit proxy, a transparent port and a CONNECT tunnel, so a
 * request can never name one host to us and another to the upstream.
 *
 * - explicit: the absolute-form URI names the destination; the Host header is replaced by it.
 * - transparent: the Host header (or an absolute-form URI, which must then agree with Host)
 *   names it; the port is the listener's. No name at all falls to the port's single owner.
 * - tunnel (plaintext inside CONNECT): the CONNECT authority fixed the destination; a Host or
 *   absolute-form URI that names anything else is a mismatch.
 * - inspected (TLS the sidecar terminated): the SNI fixed it, and Host must repeat it (no
 *   domain fronting). Forwarded over TLS to the same name.
 */
export type RequestOrigin =
  | { readonly kind: "explicit" }
  | { readonly kind: "transparent"; readonly port: number }
  | { readonly kind: "tunnel"; readonly port: number; readonly name?: string; readonly ip?: string; readonly connect: string }
  | { readonly kind: "inspected"; readonly port: number; readonly name: string; readonly sni: string; readonly connect?: string };

export interface RequestTarget {
  readonly name?: string;
  readonly ip?: string;
  readonly port: number;
  /** The Host header sent upstream. Absent only when the request named nothing (port owner). */
  readonly hostHeader?: string;
  /** Origin-form request target for the upstream: path and query, never the fragment. */
  readonly path: string;
  /** Host and URI (or tunnel authority) named different hosts: refused in every mode. */
  readonly hostMismatch: boolean;
}

export type TargetResult = { readonly ok: true; readonly target: RequestTarget } | { readonly ok: false; readonly reason: "malformed-request" };

const MALFORMED = { ok: false, reason: "malformed-request" } as const;

export interface AbsoluteHttpTarget {
  readonly authority: Authority & { readonly port: number };
  /** The authority without userinfo, as the Host header upstream. */
  readonly hostHeader: string;
  /** Origin-form request target: path and query, never the fragment. */
  readonly path: string;
}

/** `http://host[:port]/path?query` as a request target; undefined for anything else. */
export function parseAbsoluteHttpTarget(url: string): AbsoluteHttpTarget | undefined {
  if (url.length < 8 || url.slice(0, 7).toLowerCase() !== "http://") return undefined;
  const rest = url.slice(7);
  const end = rest.search(/[/?#]/);
  const rawAuthority = end === -1 ? rest : rest.slice(0, end);
  let path = end === -1 ? "/" : rest.slice(end);
  const hash = path.indexOf("#");
  if (hash !== -1) path = path.slice(0, hash);
  if (!path.startsWith("/")) path = `/${path}`;
  const hostHeader = rawAuthority.slice(rawAuthority.lastIndexOf("@") + 1);
  const authority = absoluteAuthority(hostHeader);
  if (authority === undefined) return undefined;
  return { authority, hostHeader, path };
}

// Every request on a keep-alive connection names the same authority: remember its parse (pure,
// and the results are frozen); a flood of distinct ones only empties the memo, never grows it.
const AUTHORITY_MEMO_ENTRIES = 256;
const authorities = new Map<string, (Authority & { readonly port: number }) | null>();

function absoluteAuthority(text: string): (Authority & { readonly port: number }) | undefined {
  let out = authorities.get(text);
  if (out === undefined) {
    const parsed = parseAuthority(text);
    out = parsed === undefined ? null : Object.freeze({ host: parsed.host, isIp: parsed.isIp, port: parsed.port ?? 80 });
    if (authorities.size >= AUTHORITY_MEMO_ENTRIES) authorities.clear();
    authorities.set(text, out);
  }
  return out ?? undefined;
}

/** The Host header values in raw header pairs (any spelling); more than one is smuggling bait. */
export function hostHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length === 4 && key.toLowerCase() === "host") out.push(raw[i + 1]!.trim());
  }
  return out;
}

/**
 * `normalise` turns a name into its canonical form (undefined when it is not a valid name);
 * two spellings of one host must compare equal.
 */
export function requestTarget(origin: RequestOrigin, url: string, rawHeaders: readonly string[], normalise: (name: string) => string | undefined): TargetResult {
  const hosts = hostHeaders(rawHeaders);
  if (hosts.length > 1) return MALFORMED;
  const hostValue = hosts[0] === undefined || hosts[0].length === 0 ? undefined : hosts[0];
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) ? parseAbsoluteHttpTarget(url) : undefined;
  if (absolute === undefined && !url.startsWith("/") && !(url === "*")) return MALFORMED;

  if (origin.kind === "explicit") {
    if (absolute === undefined) return MALFORMED;
    const { authority } = absolute;
    return ok(located(authority, { port: authority.port, hostHeader: absolute.hostHeader, path: absolute.path, hostMismatch: false }));
  }

  const host = hostValue === undefined ? undefined : parseAuthority(hostValue);
  if (hostValue !== undefined && host === undefined) return MALFORMED;
  const same = (a: Authority, b: Authority): boolean => {
    if (a.isIp || b.isIp) return a.isIp === b.isIp && a.host.toLowerCase() === b.host.toLowerCase();
    const na = normalise(a.host);
    return na !== undefined && na === normalise(b.host);
  };
  const path = absolute?.path ?? url;

  if (origin.kind === "transparent") {
    const named = absolute?.authority ?? host;
    const mismatch = absolute !== undefined && host !== undefined && !same(absolute.authority, host);
    if (named === undefined) return ok({ port: origin.port, path, hostMismatch: false });
    return ok(located(named, { port: origin.port, hostHeader: hostValue ?? absolute!.hostHeader, path, hostMismatch: mismatch }));
  }

  // A tunnel or terminated TLS: the authority or SNI was decided first; the request may only repeat it.
  const ip = origin.kind === "tunnel" ? origin.ip : undefined;
  const fixed: Authority = ip !== undefined ? { host: ip, isIp: true } : { host: origin.name ?? "", isIp: false };
  const mismatch = (absolute !== undefined && !same(absolute.authority, fixed)) || (host !== undefined && !same(host, fixed));
  const fallbackHost = origin.kind === "tunnel" ? origin.connect : origin.name;
  const rest = { port: origin.port, hostHeader: hostValue ?? absolute?.hostHeader ?? fallbackHost, path, hostMismatch: mismatch };
  return ok(ip !== undefined ? { ip, ...rest } : origin.name !== undefined ? { name: origin.name, ...rest } : rest);
}

/** The target at `a`'s name or address. */
function located(a: Authority, rest: Omit<RequestTarget, "name" | "ip">): RequestTarget {
  return a.isIp ? { ip: a.host, ...rest } : { name: a.host, ...rest };
}

function ok(target: RequestTarget): TargetResult {
  return { ok: true, target };
}

/**
 * A request target as events and reports may carry it: the path, and the query's key names
 * without their values (`/send?token=abc&to=x` → `/send?token&to`). Values are data a server
 * may leak through a declared API; they never reach the event stream or the audit log.
 */
export function withoutQueryValues(target: string): string {
  const hash = target.indexOf("#");
  const bare = hash === -1 ? target : target.slice(0, hash);
  const q = bare.indexOf("?");
  if (q === -1) return bare;
  const keys = bare
    .slice(q + 1)
    .split("&")
    .filter((pair) => pair.length > 0)
    .map((pair) => {
      const eq = pair.indexOf("=");
      return eq === -1 ? pair : pair.slice(0, eq);
    });
  return `${bare.slice(0, q)}?${keys.join("&")}`;
}
