import { scanArguments, type ArgumentDetector } from "../gateway/argument-scan.js";

/**
 * The secrets one sandbox's sidecar watches for, compiled once per start into needles: each
 * secret's sentinel and value in the forms a server would ship them in (raw, base64 and
 * base64url at every alignment, hex, URL-encoded, reversed). Pure; built from what the
 * control plane sends down the sidecar's stdin, never from a file or env value.
 */
export interface SecretMaterial {
  readonly name: string;
  /** The real value. Absent in a capture run that had no credentials (nothing leaves there). */
  readonly value?: string;
  /** The per-run stand-in the server holds instead of an injected secret's value. */
  readonly sentinel?: string;
  /** Where the sidecar writes the value: only this header of inspected requests to this host. */
  readonly inject?: { readonly host: string; readonly header: string; readonly format?: string };
  /** A plain secret's own host: its value may go there (the server holds it in env). */
  readonly host?: string;
}

export type SecretEncoding = "raw" | "base64" | "base64url" | "hex" | "url" | "reversed";

export interface Needle {
  readonly secret: number;
  /** A sentinel, or the value itself. */
  readonly kind: "sentinel" | "value";
  readonly encoding: SecretEncoding;
  readonly text: string;
  readonly bytes: Buffer;
  /** Lower case, dots removed: how it is looked for in a host name (which is case-folded and split into labels). */
  readonly folded: string;
}

export interface SecretWatch {
  readonly secrets: readonly SecretMaterial[];
  readonly needles: readonly Needle[];
  /** Credential shapes (detector ids) each host is declared for: the shapes of the secrets it owns. */
  readonly declaredShapes: ReadonlyMap<string, ReadonlySet<ArgumentDetector>>;
}

/** Shorter values are not watched: they would match ordinary text (the gateway's argument scan uses the same floor). */
export const MIN_WATCHED_LENGTH = 8;

export const EMPTY_SECRET_WATCH: SecretWatch = { secrets: [], needles: [], declaredShapes: new Map() };

/** `hangar-sentinel-` and 26 base32 letters: one DNS label, recognisable in any log. */
export const SENTINEL_PREFIX = "hangar-sentinel-";
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** A fresh sentinel from 16 random bytes (the caller injects the randomness). */
export function newSentinel(random: (size: number) => Uint8Array): string {
  const bytes = random(16);
  let bits = 0;
  let acc = 0;
  let out = "";
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return `${SENTINEL_PREFIX}${out}`;
}

export function compileSecretWatch(secrets: readonly SecretMaterial[]): SecretWatch {
  const needles: Needle[] = [];
  const declaredShapes = new Map<string, Set<ArgumentDetector>>();
  secrets.forEach((s, secret) => {
    for (const [kind, text] of [["sentinel", s.sentinel], ["value", s.value]] as const) {
      if (text === undefined || text.length < MIN_WATCHED_LENGTH) continue;
      const seen = new Set<string>();
      for (const [encoding, form] of encodings(text)) {
        if (form.length < MIN_WATCHED_LENGTH || seen.has(form)) continue;
        seen.add(form);
        needles.push({ secret, kind, encoding, text: form, bytes: Buffer.from(form, "utf8"), folded: form.toLowerCase().replaceAll(".", "") });
      }
    }
    const own = s.inject?.host ?? s.host;
    if (own !== undefined && s.value !== undefined) {
      const shapes = declaredShapes.get(own) ?? declaredShapes.set(own, new Set()).get(own)!;
      for (const f of scanArguments(s.value).findings) shapes.add(f.detector);
    }
  });
  return { secrets, needles, declaredShapes };
}

/** Every form of `text` worth watching. Base64 at each of three alignments: inside a longer encoded run, the text starts mid-group. */
function encodings(text: string): [SecretEncoding, string][] {
  const bytes = Buffer.from(text, "utf8");
  const out: [SecretEncoding, string][] = [["raw", text]];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes]).toString("base64");
    // Characters that mix in the unknown bytes before (the first k+1 for k>0) or after (the last partial one) are left out.
    const start = k === 0 ? 0 : k + 1;
    const end = Math.floor(((k + bytes.length) * 8) / 6);
    const core = b64.slice(start, end);
    out.push(["base64", core], ["base64url", core.replaceAll("+", "-").replaceAll("/", "_")]);
  }
  const hex = bytes.toString("hex");
  out.push(["hex", hex], ["hex", hex.toUpperCase()]);
  out.push(["url", encodeURIComponent(text)]);
  out.push(["reversed", [...text].reverse().join("")]);
  return out;
}
