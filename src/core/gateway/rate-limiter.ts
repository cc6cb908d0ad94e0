/**
 * `tools.rateLimit.perMinute` as a token bucket: up to perMinute calls at once, refilled
 * continuously at perMinute per 60 s. O(1) time and memory whatever the limit.
 */
export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

export class RateLimiter {
  private tokens: number;
  private updatedAt: number;
  private readonly perMs: number;

  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.tokens = perMinute;
    this.updatedAt = now;
    this.perMs = perMinute / 60_000;
  }

  tryTake(now: number): RateDecision {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - this.tokens) / this.perMs) };
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.perMinute, this.tokens + elapsed * this.perMs);
    this.updatedAt = now;
  }
}
