/**
 * Which headers travel on and which stop at the sidecar: hop-by-hop ones, any a Connection
 * header names, proxy credentials. Headers travel as raw pairs, in the client's order and
 * spelling. Bodies are framed again by the sidecar (exchange.ts).
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
 * Connection header names, are dropped; the exchange adds the framing it relays with.
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
 * Transfer-Encoding kept (it frames the body; the session accepted only `chunked`), and the
 * Host the client named in the URL. Expect stops here: the sidecar read the body before it
 * decided, and sends it at once.
 */
export function upstreamRequest(raw: readonly string[], hostHeader: string): string[] {
  const listed = connectionTokens(raw);
  const headers: string[] = ["Host", hostHeader];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (key !== "transfer-encoding" && (key === "host" || key === "expect" || HOP_BY_HOP.has(key) || listed.has(key))) continue;
    headers.push(raw[i]!, raw[i + 1]!);
  }
  return headers;
}

// Proxy credentials stop here; everything else (Upgrade, Connection, Sec-WebSocket-*) goes on.
const UPGRADE_DROP = new Set(["host", "proxy-authorization", "proxy-connection"]);

/** The headers of a decided upgrade request (WebSocket), with the decided Host. */
export function upgradeHeaders(raw: readonly string[], hostHeader: string): string[] {
  const headers: string[] = ["Host", hostHeader];
  for (let i = 0; i + 1 < raw.length; i += 2) if (!UPGRADE_DROP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  return headers;
}

