/**
 * Which headers travel on and which stop at the sidecar: hop-by-hop ones, any a Connection
 * header names, proxy credentials. Headers travel as raw pairs, in the client's order and
 * spelling; Node frames bodies again on each side.
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "transfer-encoding"]);
// Framing the two Node ends recompute; never dropped because a Connection header names them.
const FRAMING = new Set(["host", "content-length", "transfer-encoding"]);
const NO_TOKENS: ReadonlySet<string> = new Set();

/** Header names a Connection header lists in `raw` (lower-case), beyond the hop-by-hop set. */
function connectionTokens(raw: readonly string[]): ReadonlySet<string> {
  let tokens: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length !== 10 || key.toLowerCase() !== "connection") continue;
    for (const t of raw[i + 1]!.split(",")) {
      const name = t.trim().toLowerCase();
      if (name.length > 0 && !FRAMING.has(name) && !HOP_BY_HOP.has(name)) (tokens ??= new Set()).add(name);
    }
  }
  return tokens ?? NO_TOKENS;
}

/**
 * The end-to-end headers of `raw` (a response's) as pairs: hop-by-hop ones, and any a
 * Connection header names, are dropped; Node frames the body again for the client.
 */
export function endToEndHeaders(raw: readonly string[]): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(key) || listed.has(key)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * The request headers sent upstream, in one pass over the raw pairs: end to end only,
 * Transfer-Encoding kept (it frames the body), and the Host the client named in the URL.
 * `hasBody` follows the framing llhttp used: a body only with Transfer-Encoding or a
 * non-zero Content-Length.
 */
export function upstreamRequest(raw: readonly string[], hostHeader: string): { headers: string[]; hasBody: boolean } {
  const listed = connectionTokens(raw);
  const headers: string[] = ["Host", hostHeader];
  let hasBody = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (key === "transfer-encoding") hasBody = true;
    else if (key === "content-length") hasBody ||= Number(raw[i + 1]) !== 0;
    else if (key === "host" || HOP_BY_HOP.has(key) || listed.has(key)) continue;
    headers.push(raw[i]!, raw[i + 1]!);
  }
  return { headers, hasBody };
}

/**
 * Whether the request's Transfer-Encoding ends in something other than chunked: its body
 * cannot be framed (RFC 9112 6.3), and a parser further on might read it some other way.
 */
export function unframeable(raw: readonly string[]): boolean {
  let last: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length === 17 && key.toLowerCase() === "transfer-encoding") last = raw[i + 1]!;
  }
  if (last === undefined) return false;
  return last.slice(last.lastIndexOf(",") + 1).trim().toLowerCase() !== "chunked";
}
