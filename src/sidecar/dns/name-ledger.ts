import { HangarError } from "../../core/errors.js";
import { normaliseHostName } from "../../core/names.js";
import type { NameResolver, ResolvedName } from "../sidecar-context.js";
import type { AddressSource } from "./upstream-client.js";

/**
 * The sidecar's record of name → IPv4 addresses. The DNS server fills it when it answers,
 * and the proxy dials from it, so the sidecar only ever connects to addresses it resolved
 * itself (never to one the sandboxed server chose). Bounded: the oldest entry goes first.
 */
export interface NameLedgerOptions {
  readonly upstream: AddressSource;
  /** Epoch ms; tests pass a fake clock. */
  readonly now: () => number;
  /** Upstream TTLs are clamped into [min, max] seconds. Defaults 5 and 300. */
  readonly minTtlSeconds?: number;
  readonly maxTtlSeconds?: number;
  /** Upper bound for caching "no such name" (lower bound is minTtlSeconds). Default 30. */
  readonly maxNegativeTtlSeconds?: number;
  /** Default 10 000. */
  readonly maxEntries?: number;
}

export interface LedgerEntry extends ResolvedName {
  /** Epoch ms when the upstream answered. */
  readonly resolvedAt: number;
  /** The upstream said the name does not exist; `resolve` throws for it until expiry. */
  readonly nxdomain: boolean;
}

export class NameLedger implements NameResolver {
  private readonly table = new Map<string, LedgerEntry>();
  private readonly pending = new Map<string, Promise<LedgerEntry>>();
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly maxNegativeTtl: number;
  private readonly maxEntries: number;

  constructor(private readonly options: NameLedgerOptions) {
    this.minTtl = options.minTtlSeconds ?? 5;
    this.maxTtl = options.maxTtlSeconds ?? 300;
    this.maxNegativeTtl = options.maxNegativeTtlSeconds ?? 30;
    this.maxEntries = options.maxEntries ?? 10_000;
    if (!(this.minTtl >= 0 && this.maxTtl >= this.minTtl && this.maxEntries >= 1)) {
      throw new HangarError("HANGAR_CONFIG_INVALID", "name ledger: need 0 <= minTtlSeconds <= maxTtlSeconds and maxEntries >= 1", {
        data: { minTtl: this.minTtl, maxTtl: this.maxTtl, maxEntries: this.maxEntries },
      });
    }
  }

  /** Fresh answer from the ledger, or one upstream query shared by every concurrent caller. */
  async resolve(rawName: string): Promise<ResolvedName> {
    // Every key is a normalised name, so a hit means rawName is one already: the proxy asks
    // with the name it normalised, once per request, and skips normalising it again here.
    const hit = this.table.get(rawName);
    if (hit !== undefined && !hit.nxdomain && hit.expiresAt > this.options.now()) return { name: hit.name, ips: hit.ips, expiresAt: hit.expiresAt };
    const name = normaliseHostName(rawName);
    if (name === undefined) {
      throw new HangarError("HANGAR_DNS_UPSTREAM", `not a host name: ${JSON.stringify(rawName)}`, { data: { reason: "invalid-name" } });
    }
    const cached = this.fresh(name);
    const entry = cached ?? (await this.fetch(name));
    if (entry.nxdomain) {
      throw new HangarError("HANGAR_DNS_UPSTREAM", `${name} does not exist upstream (NXDOMAIN)`, { data: { name, rcode: "NXDOMAIN" } });
    }
    return { name: entry.name, ips: entry.ips, expiresAt: entry.expiresAt };
  }

  /** resolve()'s answer for a normalised name the table holds fresh and positive, without a promise; else undefined. */
  peek(name: string): ResolvedName | undefined {
    const hit = this.table.get(name);
    return hit !== undefined && !hit.nxdomain && hit.expiresAt > this.options.now() ? hit : undefined;
  }

  /** The fresh, positive ledger answer for `name`, without asking upstream. */
  lookupCached(rawName: string): ResolvedName | undefined {
    const name = normaliseHostName(rawName);
    const entry = name === undefined ? undefined : this.fresh(name);
    if (entry === undefined || entry.nxdomain) return undefined;
    return { name: entry.name, ips: entry.ips, expiresAt: entry.expiresAt };
  }

  /** Every entry held, fresh or stale, oldest first. */
  entries(): LedgerEntry[] {
    return [...this.table.values()];
  }

  get size(): number {
    return this.table.size;
  }

  private fresh(name: string): LedgerEntry | undefined {
    const entry = this.table.get(name);
    return entry !== undefined && entry.expiresAt > this.options.now() ? entry : undefined;
  }

  private fetch(name: string): Promise<LedgerEntry> {
    const inflight = this.pending.get(name);
    if (inflight !== undefined) return inflight;
    const p = this.options.upstream
      .resolveA(name)
      .then((answer) => {
        const nxdomain = answer.rcode === "NXDOMAIN";
        const ceiling = nxdomain || answer.ips.length === 0 ? Math.max(this.minTtl, this.maxNegativeTtl) : this.maxTtl;
        const ttl = Math.min(Math.max(answer.ttl, this.minTtl), ceiling);
        const now = this.options.now();
        const entry: LedgerEntry = { name, ips: [...answer.ips], expiresAt: now + ttl * 1000, resolvedAt: now, nxdomain };
        this.store(entry);
        return entry;
      })
      .finally(() => this.pending.delete(name));
    this.pending.set(name, p);
    return p;
  }

  private store(entry: LedgerEntry): void {
    // Re-inserting moves the name to the young end of the Map's insertion order.
    this.table.delete(entry.name);
    this.table.set(entry.name, entry);
    while (this.table.size > this.maxEntries) {
      const oldest = this.table.keys().next();
      if (oldest.done === true) break;
      this.table.delete(oldest.value);
    }
  }
}
