/**
 * Exponential backoff for restarts: initialMs, then doubling (by `factor`) up to maxMs,
 * each delay spread by ±jitter so a fleet of servers that died together does not restart
 * in lock-step. `random` is injected so tests get exact delays.
 */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor?: number;
  /** Fraction of the delay, 0..1. Default 0.2. */
  readonly jitter?: number;
  readonly random?: () => number;
}

/** The delay before attempt `attempt` (1-based). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const factor = options.factor ?? 2;
  const jitter = Math.min(Math.max(options.jitter ?? 0.2, 0), 1);
  const random = options.random ?? Math.random;
  const base = Math.min(options.maxMs, options.initialMs * factor ** Math.max(0, attempt - 1));
  const spread = base * jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(options.maxMs, base + spread)));
}
