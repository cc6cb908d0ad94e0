/**
 * A circuit breaker per upstream server. Closed: calls pass. After `failureThreshold`
 * consecutive failures it opens: calls fail fast for `coolDownMs`. Then it is half-open:
 * one trial call passes (the rest still fail fast); its success closes the breaker, its
 * failure opens it again for another cool-down. Failures are transport-level (the server
 * died, hung or would not start); a tool that answers with an error is a success here.
 */
export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  readonly failureThreshold: number;
  readonly coolDownMs: number;
  readonly now: () => number;
}

export type BreakerPermit =
  | { readonly allowed: true; readonly trial: boolean }
  | { readonly allowed: false; readonly state: "open" | "half-open"; readonly retryAfterMs: number; readonly failures: number };

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return "closed";
    return this.options.now() - this.openedAt >= this.options.coolDownMs ? "half-open" : "open";
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Asks to pass one call. A granted trial must be followed by recordSuccess or recordFailure. */
  tryAcquire(): BreakerPermit {
    const state = this.state;
    if (state === "closed") return { allowed: true, trial: false };
    if (state === "half-open" && !this.trialInFlight) {
      this.trialInFlight = true;
      return { allowed: true, trial: true };
    }
    const retryAfterMs = state === "open" ? Math.max(0, (this.openedAt ?? 0) + this.options.coolDownMs - this.options.now()) : 0;
    return { allowed: false, state, retryAfterMs, failures: this.failures };
  }

  recordSuccess(): void {
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  /** Returns true when this failure opened (or re-opened) the breaker. */
  recordFailure(): boolean {
    this.failures += 1;
    const wasTrial = this.trialInFlight;
    this.trialInFlight = false;
    if (wasTrial || (this.openedAt === undefined && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.options.now();
      return true;
    }
    return false;
  }

  /** Gives back a trial permit that was not used (the call was refused for another reason). */
  releaseTrial(): void {
    this.trialInFlight = false;
  }
}
