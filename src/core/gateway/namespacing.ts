import { sha256Hex } from "../audit/hash-chain.js";

/**
 * The names clients see: `<server>__<name>` for tools and prompts, so one endpoint can
 * carry every server without collisions. Clients accept [a-zA-Z0-9_-]{1,64} everywhere,
 * so names outside that set are made valid (other characters become "_", an over-long
 * name is cut and ends in a short hash of the original), and two upstream names that
 * would end up the same are both withheld rather than one shadowing the other.
 *
 * Server names never contain "__" (nor start or end with "_"), so the first "__" of an
 * exposed name always ends the server part: names of different servers cannot collide.
 *
 * Resources are addressed by URI, not by name: `hangar://<server>/<original uri>`, which
 * keeps templates such as `file:///{path}` usable as templates.
 */
export const NAMESPACE_SEPARATOR = "__";
export const MAX_EXPOSED_NAME_LENGTH = 64;
export const EXPOSED_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** The longest server name that still leaves room for "__" and a one-character name. */
export const MAX_SERVER_NAME_LENGTH = MAX_EXPOSED_NAME_LENGTH - NAMESPACE_SEPARATOR.length - 1;
export const RESOURCE_URI_PREFIX = "hangar://";

/** Why `name` cannot name a server in the gateway, or undefined when it can. */
export function serverNameProblem(name: string): string | undefined {
  if (!/^[a-zA-Z0-9_-]+$/.test(name)) return `server name ${JSON.stringify(name)} may hold only letters, digits, "-" and "_"`;
  if (name.includes(NAMESPACE_SEPARATOR)) return `server name ${JSON.stringify(name)} contains "__", which separates the server from the tool in exposed names`;
  if (name.startsWith("_") || name.endsWith("_")) return `server name ${JSON.stringify(name)} starts or ends with "_", which would blur the "__" separator`;
  if (name.length > MAX_SERVER_NAME_LENGTH) return `server name ${JSON.stringify(name)} is ${name.length} characters; at most ${MAX_SERVER_NAME_LENGTH} fit in a ${MAX_EXPOSED_NAME_LENGTH}-character tool name`;
  return undefined;
}

/** The exposed form of one upstream name (always valid, possibly altered). */
export function exposedName(server: string, name: string): string {
  const plain = `${server}${NAMESPACE_SEPARATOR}${name.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
  if (plain.length <= MAX_EXPOSED_NAME_LENGTH && name.length > 0) return plain;
  const suffix = `_${sha256Hex(name).slice(0, 8)}`;
  return `${plain.slice(0, MAX_EXPOSED_NAME_LENGTH - suffix.length)}${suffix}`;
}

export interface NamespacedEntry {
  readonly exposed: string;
  readonly original: string;
}

export interface NamespaceConflict {
  readonly exposed: string;
  /** The upstream names that would all become `exposed`; none of them is exposed. */
  readonly originals: readonly string[];
}

export interface Namespace {
  readonly entries: readonly NamespacedEntry[];
  readonly conflicts: readonly NamespaceConflict[];
}

/** Namespaces one server's names; duplicates after namespacing become conflicts, not winners. */
export function namespaceNames(server: string, names: readonly string[]): Namespace {
  const byExposed = new Map<string, string[]>();
  for (const original of new Set(names)) {
    const exposed = exposedName(server, original);
    const list = byExposed.get(exposed);
    if (list === undefined) byExposed.set(exposed, [original]);
    else list.push(original);
  }
  const entries: NamespacedEntry[] = [];
  const conflicts: NamespaceConflict[] = [];
  for (const [exposed, originals] of byExposed) {
    if (originals.length === 1) entries.push({ exposed, original: originals[0] as string });
    else conflicts.push({ exposed, originals: [...originals].sort() });
  }
  return { entries, conflicts };
}

/** The server part of an exposed name, or undefined when it has no "__". */
export function serverOf(exposed: string): string | undefined {
  const at = exposed.indexOf(NAMESPACE_SEPARATOR);
  return at > 0 ? exposed.slice(0, at) : undefined;
}

export function exposedResourceUri(server: string, uri: string): string {
  return `${RESOURCE_URI_PREFIX}${server}/${uri}`;
}

/** Splits `hangar://<server>/<original>`; undefined for any other URI. */
export function parseResourceUri(uri: string): { readonly server: string; readonly uri: string } | undefined {
  if (!uri.startsWith(RESOURCE_URI_PREFIX)) return undefined;
  const rest = uri.slice(RESOURCE_URI_PREFIX.length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return undefined;
  return { server: rest.slice(0, slash), uri: rest.slice(slash + 1) };
}
