import type { Attempt } from "../core/decision.js";
import { labelsUnder } from "../core/names.js";
import { findHostRule, type CompiledPolicy } from "../core/policy/compiled-policy.js";
import { nameBits } from "../core/tunnelling.js";
import { SubdomainRate, type RateSnapshot } from "./dns/subdomain-rate.js";

/**
 * The sandbox's one account of the names under its policy's wildcards, whatever path they
 * came by: a DNS question, a TLS SNI, an HTTP Host or a CONNECT authority. Every name that
 * path would have the sidecar look up upstream reaches whoever serves its zone, so all of
 * them feed the same counts, and so the same tunnelling signals and budget, in `decide()`:
 * - asked: distinct names (and their summed bits) under each wildcard in the last minute;
 * - looked up: distinct names actually resolved upstream in the budget window.
 * The composition root owns one and hands it to the DNS handler and the proxy's gate.
 */
export interface NameAccountingOptions {
  /** Epoch ms; tests pass a fake clock. */
  readonly now: () => number;
  /** The window of the per-minute counts. Default 60 000. */
  readonly rateWindowMs?: number;
  /** The window of the lookup budget. Default 3 600 000: the budget is per hour. */
  readonly budgetWindowMs?: number;
  /** Names remembered per wildcard in each window; keep it above the budget. Default 4096. */
  readonly maxNamesPerWildcard?: number;
}

/** What `decide()` needs from the account, as `Attempt` spells it (empty for a name under no wildcard). */
export type NameFacts = Pick<Attempt, "uniqueSubdomainsPerMinute" | "subdomainBitsPerMinute" | "upstreamLookups">;

/** The account without the names themselves (see RateSnapshot), to carry it across a restart. */
export interface NameAccountingSnapshot {
  readonly asked: RateSnapshot;
  readonly lookedUp: RateSnapshot;
}

export const DEFAULT_BUDGET_WINDOW_MS = 3_600_000;

/** What observe() returns for every name under no wildcard: no counts, one shared object. */
export const NO_FACTS: NameFacts = Object.freeze({});

export class NameAccounting {
  private readonly asked: SubdomainRate;
  private readonly lookedUp: SubdomainRate;

  constructor(options: NameAccountingOptions) {
    const maxNamesPerSuffix = options.maxNamesPerWildcard ?? 4096;
    this.asked = new SubdomainRate({ now: options.now, windowMs: options.rateWindowMs ?? 60_000, maxNamesPerSuffix });
    this.lookedUp = new SubdomainRate({ now: options.now, windowMs: options.budgetWindowMs ?? DEFAULT_BUDGET_WINDOW_MS, maxNamesPerSuffix });
  }

  /**
   * Records that the sandbox asked for `name` (normalised) and returns the counts its
   * decision needs. Asking again for a name refreshes it and never counts twice.
   */
  observe(policy: CompiledPolicy, name: string): NameFacts {
    const rule = findHostRule(policy, name);
    if (rule?.pattern.kind !== "wildcard") return NO_FACTS;
    const unique = this.asked.observe(rule.text, name, nameBits(labelsUnder(rule.pattern, name)));
    return {
      uniqueSubdomainsPerMinute: unique,
      subdomainBitsPerMinute: this.asked.weight(rule.text),
      upstreamLookups: this.lookedUp.count(rule.text) + (this.lookedUp.has(rule.text, name) ? 0 : 1),
    };
  }

  /**
   * Records that `name` is about to be looked up upstream. Call it only once the decision
   * permits the lookup, and before anything awaits, so the next decision sees it spent.
   */
  charge(policy: CompiledPolicy, name: string): void {
    const rule = findHostRule(policy, name);
    if (rule?.pattern.kind === "wildcard") this.lookedUp.observe(rule.text, name);
  }

  /** Moves whenever a name was asked or charged. */
  get version(): number {
    return this.asked.version + this.lookedUp.version;
  }

  snapshot(): NameAccountingSnapshot {
    return { asked: this.asked.snapshot(), lookedUp: this.lookedUp.snapshot() };
  }

  /** Adds what a previous process of this sandbox had counted (see SubdomainRate.restore). */
  restore(snapshot: NameAccountingSnapshot): void {
    this.asked.restore(snapshot.asked);
    this.lookedUp.restore(snapshot.lookedUp);
  }
}
