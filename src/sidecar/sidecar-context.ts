import type { Logger } from "pino";
import type { DecisionContext } from "../core/decision.js";
import type { EventSink } from "../core/events.js";
import type { NameAccounting } from "./name-accounting.js";

/**
 * The seam between the sidecar's parts. The DNS resolver and the proxy listeners get one
 * of these from the composition root (sidecar.ts); nothing here is a module singleton, so
 * tests build their own with a fake clock or sink.
 */
export interface ResolvedName {
  readonly name: string;
  /** IPv4 addresses only: the sandbox has no IPv6. */
  readonly ips: readonly string[];
  /** Epoch ms after which the answer must be fetched again. */
  readonly expiresAt: number;
}

/** The sidecar's own view of the world: upstream resolution plus the name→IP ledger. */
export interface NameResolver {
  /** Resolve `name` (normalised) to IPv4 addresses, from the ledger when fresh. Throws HangarError HANGAR_DNS_UPSTREAM. */
  resolve(name: string): Promise<ResolvedName>;
  /** What resolve() would give at once from a fresh ledger entry for `name` (normalised), or undefined. */
  peek?(name: string): ResolvedName | undefined;
}

export interface SidecarContext {
  readonly server: string;
  /** Read on every decision, so a SIGHUP reload applies to the next attempt without touching live ones. */
  decisionContext(): DecisionContext;
  readonly events: EventSink;
  readonly resolver: NameResolver;
  /** The one account of names under wildcards, shared by DNS and every proxy path. */
  readonly names: NameAccounting;
  readonly logger: Logger;
  /** Bytes of a request body read to decide its shape (sidecar config inspectBodyBytes); default 1 MiB. */
  readonly inspectBodyBytes?: number;
  now(): number;
  newId(): string;
}
