/**
 * SVCB/HTTPS record data (RFC 9460), which dns-packet does not know. We only ever hand these
 * on with `ech` removed (an encrypted ClientHello would hide the real SNI from the proxy)
 * and `ipv6hint` removed (no IPv6 in the sandbox); in transparent mode `ipv4hint` must point
 * at the sidecar, or a client would dial the real address and bypass it.
 */
const KEY_MANDATORY = 0;
const KEY_IPV4HINT = 4;
const KEY_ECH = 5;
const KEY_IPV6HINT = 6;
const STRIPPED: ReadonlySet<number> = new Set([KEY_ECH, KEY_IPV6HINT]);

export interface SvcbRewrite {
  readonly rdata: Buffer;
  /** The ipv4hint addresses the upstream gave (before any rewrite), for the rebinding check. */
  readonly ipv4Hints: readonly string[];
}

/**
 * Rewrites one SVCB/HTTPS rdata. `answerAddress` replaces every ipv4hint when set.
 * Returns undefined for malformed data: such a record is dropped, never passed on as is.
 */
export function rewriteSvcb(rdata: Buffer, answerAddress?: string): SvcbRewrite | undefined {
  if (rdata.length < 3) return undefined;
  let offset = 2;
  // TargetName is never compressed in SVCB (RFC 9460 §2.2).
  for (;;) {
    if (offset >= rdata.length) return undefined;
    const len = rdata[offset]!;
    offset += 1;
    if (len === 0) break;
    if ((len & 0xc0) !== 0 || offset + len > rdata.length) return undefined;
    offset += len;
  }
  const parts: Buffer[] = [rdata.subarray(0, offset)];
  const hints: string[] = [];
  let lastKey = -1;
  while (offset < rdata.length) {
    if (offset + 4 > rdata.length) return undefined;
    const key = rdata.readUInt16BE(offset);
    const len = rdata.readUInt16BE(offset + 2);
    const value = rdata.subarray(offset + 4, offset + 4 + len);
    if (value.length !== len || key <= lastKey) return undefined;
    lastKey = key;
    offset += 4 + len;
    if (STRIPPED.has(key)) continue;
    if (key === KEY_IPV4HINT) {
      if (len === 0 || len % 4 !== 0) return undefined;
      for (let i = 0; i < len; i += 4) hints.push([...value.subarray(i, i + 4)].join("."));
      if (answerAddress !== undefined) {
        parts.push(param(key, Buffer.from(answerAddress.split(".").map(Number))));
        continue;
      }
    }
    if (key === KEY_MANDATORY) {
      if (len === 0 || len % 2 !== 0) return undefined;
      const keys: number[] = [];
      for (let i = 0; i < len; i += 2) keys.push(value.readUInt16BE(i));
      const kept = keys.filter((k) => !STRIPPED.has(k));
      if (kept.length === 0) continue;
      const buf = Buffer.alloc(kept.length * 2);
      kept.forEach((k, i) => buf.writeUInt16BE(k, i * 2));
      parts.push(param(key, buf));
      continue;
    }
    parts.push(rdata.subarray(offset - 4 - len, offset));
  }
  return { rdata: Buffer.concat(parts), ipv4Hints: hints };
}

function param(key: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(key, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

/** Builds SVCB/HTTPS rdata; for tests and the fake upstream. */
export function encodeSvcb(priority: number, target: string, params: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(priority, 0);
  const labels = target === "." || target === "" ? [] : target.replace(/\.$/, "").split(".");
  const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")])), Buffer.from([0])]);
  const sorted = [...params].sort((a, b) => a[0] - b[0]);
  return Buffer.concat([head, name, ...sorted.map(([k, v]) => param(k, v))]);
}

export const SVCB_KEYS = { mandatory: KEY_MANDATORY, alpn: 1, port: 3, ipv4hint: KEY_IPV4HINT, ech: KEY_ECH, ipv6hint: KEY_IPV6HINT } as const;
