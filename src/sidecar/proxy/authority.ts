import { parseIp } from "../../core/ip.js";

/**
 * `host[:port]` as found in a Host header or a CONNECT request target. IPv6 literals must be
 * bracketed; anything else with a second colon is refused rather than guessed at.
 */
export interface Authority {
  /** The host as written (brackets removed); a name is normalised later, by the decision. */
  readonly host: string;
  /** Whether `host` is an IP literal (IPv4 or IPv6). */
  readonly isIp: boolean;
  readonly port?: number;
}

const PORT = /^\d{1,5}$/;

export function parseAuthority(raw: string, options: { requirePort?: boolean } = {}): Authority | undefined {
  if (raw.length === 0 || raw.length > 300) return undefined;
  let host: string;
  let portText: string | undefined;
  if (raw.startsWith("[")) {
    const close = raw.indexOf("]");
    if (close === -1) return undefined;
    host = raw.slice(1, close);
    const rest = raw.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(":")) return undefined;
      portText = rest.slice(1);
    }
    if (!host.includes(":") || parseIp(host) === undefined) return undefined;
  } else {
    const colon = raw.indexOf(":");
    if (colon !== raw.lastIndexOf(":")) return undefined;
    host = colon === -1 ? raw : raw.slice(0, colon);
    portText = colon === -1 ? undefined : raw.slice(colon + 1);
  }
  if (host.length === 0) return undefined;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!PORT.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  } else if (options.requirePort === true) {
    return undefined;
  }
  return { host, isIp: parseIp(host) !== undefined, ...(port !== undefined ? { port } : {}) };
}
