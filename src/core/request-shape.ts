import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";

/**
 * The shape of one HTTP request: what a server asks of an API, with every value left out.
 * Pure and bounded: the sidecar feeds it the request line, header names and at most
 * `maxBodyBytes` of body (gzip, deflate and br are decoded here, within the same bound); baselines record shapes and drift rules
 * compare them. Ids in paths and map keys become placeholders, so one route stays one route.
 */

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Field paths kept per body; a body with more is `not-inspected` (too-complex). */
export const MAX_BODY_FIELDS = 256;
/** Nesting a body may have before it is `not-inspected` (too-complex). */
export const MAX_BODY_DEPTH = 32;
const MAX_QUERY_KEYS = 100;
const MAX_HEADER_NAMES = 100;
const MAX_NAME_LENGTH = 100;
const MAX_PATH_LENGTH = 2048;
const MAX_FIELD_PATH_LENGTH = 4096;

export const BODY_KINDS = ["form", "json", "none", "not-inspected"] as const;
export type BodyKind = (typeof BODY_KINDS)[number];

/**
 * Why a body yielded no fields: larger than the bound (before or after decompression), not
 * valid for its declared type or encoding, compressed with a coding Hangar does not decode,
 * a type whose fields Hangar does not read (multipart, binary, text), or too many fields or
 * too deep.
 */
export const NOT_INSPECTED_REASONS = ["too-large", "unparseable", "compressed", "unsupported-type", "too-complex"] as const;
export type NotInspectedReason = (typeof NOT_INSPECTED_REASONS)[number];

export interface RequestShape {
  /** As sent (methods are case-sensitive), at most 20 characters. */
  readonly method: string;
  /** The path without query, ids replaced by `{n}`, `{uuid}` or `{id}` (a literal `{`, `}` or `*` is percent-encoded); `*` for `OPTIONS *`. */
  readonly path: string;
  /** Sorted, distinct; ids templated like path segments. */
  readonly queryKeys: readonly string[];
  /** Sorted, distinct, lower case; hop-by-hop and per-request headers left out. */
  readonly headerNames: readonly string[];
  readonly body: BodyKind;
  /** Sorted field paths (`To`, `Attachments[].Name`, `user.address.city`); empty unless json or form. */
  readonly bodyFields: readonly string[];
  /** Set exactly when `body` is `not-inspected`. */
  readonly bodyNotInspected?: NotInspectedReason;
}

export interface RequestFacts {
  readonly method: string;
  /** The request target as sent: origin form (`/a?b=1`), absolute form, or `*`. */
  readonly target: string;
  readonly headerNames: readonly string[];
  readonly contentType?: string;
  /** The Content-Encoding of `body`: gzip, deflate and br (stacked up to twice) are decoded. */
  readonly contentEncoding?: string;
  /** The body bytes read, at most the bound; absent or empty for no body. */
  readonly body?: Uint8Array;
  /** The body was longer than the bound (what was read is a prefix). */
  readonly bodyTruncated?: boolean;
}

export interface RequestShapeOptions {
  readonly maxBodyBytes?: number;
}

/**
 * Headers that describe the connection or this one message rather than what the client
 * asks: hop-by-hop (RFC 9110 7.6.1), framing, and values that vary per request by design.
 * Host is implied by the destination.
 */
const IGNORED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "date",
  "expect",
  "if-modified-since",
  "if-none-match",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LONG_HEX = /^[0-9a-f]{16,}$/i;
const TOKEN_CHARS = /^[A-Za-z0-9+=_-]{16,}$/;

/**
 * A placeholder for a path segment, query key or map key that names one thing among many
 * (a number, a UUID, a long hex or base64-ish token), else undefined.
 */
export function idPlaceholder(s: string): "{n}" | "{uuid}" | "{id}" | undefined {
  if (/^\d+$/.test(s)) return "{n}";
  if (UUID.test(s)) return "{uuid}";
  if (LONG_HEX.test(s)) return "{id}";
  // base64-ish: long, and mixes digits with letters of both cases (a slug is lower case).
  if (TOKEN_CHARS.test(s) && /\d/.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s)) return "{id}";
  if (s.length > 64) return "{id}";
  return undefined;
}

/** A field or key name as stored: templated if id-like, else printable and bounded. */
function nameOf(raw: string): string {
  const id = idPlaceholder(raw);
  if (id !== undefined) return id;
  const clipped = raw.length > MAX_NAME_LENGTH ? raw.slice(0, MAX_NAME_LENGTH) : raw;
  // JSON quoting makes control characters visible, and a literal "{n}" distinct from the placeholder.
  return /^[\x21-\x7a|~]+$/.test(clipped) ? clipped : JSON.stringify(clipped);
}

/** The path of a request target, templated. */
export function pathTemplate(target: string): string {
  if (target === "*") return "*";
  let rest = target;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(rest);
  if (scheme !== null) rest = rest.slice(scheme[0].length);
  const end = rest.search(/[?#]/);
  let path = end === -1 ? rest : rest.slice(0, end);
  if (!path.startsWith("/")) path = `/${path}`;
  if (path.length > MAX_PATH_LENGTH) path = path.slice(0, MAX_PATH_LENGTH);
  return path
    .split("/")
    .map((segment) => {
      if (segment.length === 0) return segment;
      const id = idPlaceholder(segment);
      if (id !== undefined) return id;
      // Braces and `*` are ours (placeholders, and globs a reviewer writes into a baseline):
      // a literal one stays percent-encoded, so a request never reads as either.
      return segment.replace(/[{}*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
    })
    .join("/");
}

const sortedDistinct = (xs: Iterable<string>): string[] => [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Names of `a=1&b&c[]=2`, decoded; undefined when a name is not valid percent-encoding. */
function formKeys(text: string, max: number): string[] | undefined {
  const keys: string[] = [];
  for (const pair of text.split("&")) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf("=");
    const raw = (eq === -1 ? pair : pair.slice(0, eq)).replace(/\+/g, " ");
    let key: string;
    try {
      key = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    keys.push(nameOf(key));
    if (keys.length > max) return keys;
  }
  return keys;
}

export function queryKeys(target: string): string[] {
  const q = target.indexOf("?");
  if (q === -1) return [];
  const hash = target.indexOf("#", q);
  const query = target.slice(q + 1, hash === -1 ? undefined : hash);
  // A query name that is not valid percent-encoding is still a name: keep it as sent.
  const keys = formKeys(query, MAX_QUERY_KEYS) ?? query.split("&").filter((p) => p.length > 0).map((p) => nameOf(p.split("=")[0] ?? ""));
  return sortedDistinct(keys).slice(0, MAX_QUERY_KEYS);
}

export function headerNameSet(names: readonly string[]): string[] {
  const kept = names.map((n) => n.toLowerCase()).filter((n) => n.length <= MAX_NAME_LENGTH && TOKEN.test(n) && !IGNORED_HEADERS.has(n));
  return sortedDistinct(kept).slice(0, MAX_HEADER_NAMES);
}

class TooComplex extends Error {}

/** Field paths of a parsed JSON value: object keys joined with dots, array elements as `[]`. */
export function jsonFieldPaths(value: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, prefix: string, depth: number): void => {
    if (depth > MAX_BODY_DEPTH) throw new TooComplex();
    if (Array.isArray(v)) {
      for (const item of v) walk(item, `${prefix}[]`, depth + 1);
      return;
    }
    if (v === null || typeof v !== "object") return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const name = nameOf(k);
      // A key with separators in it is quoted, so `a.b` and `{"a.b": 1}` stay apart.
      const part = /^[^.[\]"]+$/.test(name) || name.startsWith('"') ? name : JSON.stringify(name);
      const path = prefix === "" ? part : `${prefix}.${part}`;
      out.add(path);
      if (out.size > MAX_BODY_FIELDS) throw new TooComplex();
      walk(child, path, depth + 1);
    }
  };
  walk(value, "", 0);
  return sortedDistinct(out);
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

const isJsonType = (t: string): boolean => t === "application/json" || t === "text/json" || /^application\/[a-z0-9.+-]+\+json$/.test(t);

const MAX_CODINGS = 2;

/** Undoes Content-Encoding within `max` bytes of output; a reason when it cannot. */
function decode(body: Uint8Array, contentEncoding: string, max: number): Uint8Array | NotInspectedReason {
  const codings = contentEncoding
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
  if (codings.length > MAX_CODINGS) return "compressed";
  let out = body;
  // Codings are listed in the order they were applied, so they come off last first.
  for (const coding of codings.reverse()) {
    const options = { maxOutputLength: max };
    try {
      if (coding === "gzip" || coding === "x-gzip") out = gunzipSync(out, options);
      else if (coding === "br") out = brotliDecompressSync(out, options);
      else if (coding === "deflate") out = inflateDeflate(out, options);
      else return "compressed";
    } catch (err) {
      return err instanceof RangeError ? "too-large" : "unparseable";
    }
  }
  return out;
}

/** HTTP's "deflate" is zlib-wrapped by the spec, raw by some clients: accept both. */
function inflateDeflate(body: Uint8Array, options: { maxOutputLength: number }): Uint8Array {
  try {
    return inflateSync(body, options);
  } catch (err) {
    if (err instanceof RangeError) throw err;
    return inflateRawSync(body, options);
  }
}

type BodyResult = Pick<RequestShape, "body" | "bodyFields" | "bodyNotInspected">;

const notInspected = (why: NotInspectedReason): BodyResult => ({ body: "not-inspected", bodyFields: [], bodyNotInspected: why });

function bodyShape(facts: RequestFacts, maxBodyBytes: number): BodyResult {
  const body = facts.body;
  if ((body === undefined || body.length === 0) && facts.bodyTruncated !== true) return { body: "none", bodyFields: [] };
  if (facts.bodyTruncated === true || (body?.length ?? 0) > maxBodyBytes) return notInspected("too-large");
  const decoded = decode(body ?? new Uint8Array(), facts.contentEncoding ?? "", maxBodyBytes);
  if (typeof decoded === "string") return notInspected(decoded);
  const type = mediaType(facts.contentType);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(decoded);
  } catch {
    return notInspected(type === "" || isJsonType(type) || type === "application/x-www-form-urlencoded" ? "unparseable" : "unsupported-type");
  }
  // No declared type: read it as JSON only when it plainly is an object or array.
  if (isJsonType(type) || (type === "" && /^\s*[[{]/.test(text))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return notInspected("unparseable");
    }
    try {
      return { body: "json", bodyFields: jsonFieldPaths(parsed) };
    } catch (err) {
      if (err instanceof TooComplex) return notInspected("too-complex");
      throw err;
    }
  }
  if (type === "application/x-www-form-urlencoded") {
    const keys = formKeys(text.trim(), MAX_BODY_FIELDS);
    if (keys === undefined) return notInspected("unparseable");
    if (keys.length > MAX_BODY_FIELDS) return notInspected("too-complex");
    return { body: "form", bodyFields: sortedDistinct(keys) };
  }
  return notInspected("unsupported-type");
}

/** The shape of one request. Never throws on what a server sends. */
export function requestShape(facts: RequestFacts, options: RequestShapeOptions = {}): RequestShape {
  const method = facts.method.slice(0, 20);
  return {
    method,
    path: pathTemplate(facts.target),
    queryKeys: queryKeys(facts.target),
    headerNames: headerNameSet(facts.headerNames),
    ...bodyShape(facts, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
  };
}

/** A shape as the optional fields of an egress event (names only, never values). */
export interface RequestShapeEventFields {
  /** The path template (`/repos/{n}/issues`); the event's `url` keeps the target as sent. */
  readonly pathTemplate?: string;
  readonly queryKeys?: readonly string[];
  readonly headerNames?: readonly string[];
  readonly bodyKind?: BodyKind;
  readonly bodyFields?: readonly string[];
  readonly bodyNotInspected?: NotInspectedReason;
}

export function shapeEventFields(shape: RequestShape): RequestShapeEventFields {
  return {
    pathTemplate: shape.path,
    queryKeys: shape.queryKeys,
    headerNames: shape.headerNames,
    bodyKind: shape.body,
    bodyFields: shape.bodyFields,
    ...(shape.bodyNotInspected !== undefined ? { bodyNotInspected: shape.bodyNotInspected } : {}),
  };
}

const stringList = (xs: unknown): xs is readonly string[] => Array.isArray(xs) && xs.every((x) => typeof x === "string");

/**
 * The shape an event carries, or undefined when it carries none or a malformed one (events
 * are read back from files a server's sidecar wrote; they are input, not trusted).
 */
export function shapeFromEvent(e: RequestShapeEventFields & { readonly method?: string }): RequestShape | undefined {
  if (typeof e.method !== "string" || typeof e.pathTemplate !== "string" || e.bodyKind === undefined || !(BODY_KINDS as readonly string[]).includes(e.bodyKind)) return undefined;
  if (e.method.length === 0 || e.method.length > 20 || !/^(\/[\x21-\x7e]*|\*)$/.test(e.pathTemplate) || e.pathTemplate.length > MAX_PATH_LENGTH) return undefined;
  const lists = [e.queryKeys ?? [], e.headerNames ?? [], e.bodyFields ?? []];
  if (!lists.every(stringList) || lists.some((l) => l.length > MAX_BODY_FIELDS || l.some((x) => x.length === 0 || x.length > MAX_FIELD_PATH_LENGTH))) return undefined;
  const why = e.bodyKind === "not-inspected" ? (NOT_INSPECTED_REASONS.includes(e.bodyNotInspected!) ? e.bodyNotInspected : "unparseable") : undefined;
  return {
    method: e.method,
    path: e.pathTemplate,
    queryKeys: sortedDistinct(e.queryKeys ?? []),
    headerNames: sortedDistinct((e.headerNames ?? []).map((h) => h.toLowerCase())),
    body: e.bodyKind,
    bodyFields: e.bodyKind === "json" || e.bodyKind === "form" ? sortedDistinct(e.bodyFields ?? []) : [],
    ...(why !== undefined ? { bodyNotInspected: why } : {}),
  };
}

/**
 * A request target as events, reports and the audit show it: query values and any fragment
 * left out, keys kept in order (`/search?q=x&page=2#top` → `/search?q&page`).
 */
export function targetWithoutValues(target: string): string {
  const hash = target.indexOf("#");
  const bare = hash === -1 ? target : target.slice(0, hash);
  const q = bare.indexOf("?");
  if (q === -1) return bare;
  const keys = bare
    .slice(q + 1)
    .split("&")
    .filter((pair) => pair.length > 0)
    .map((pair) => pair.split("=", 1)[0]!);
  return `${bare.slice(0, q)}?${keys.join("&")}`;
}
