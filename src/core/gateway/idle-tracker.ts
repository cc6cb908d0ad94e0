/**
 * When a running server has been idle long enough to stop. Idle means no call in flight
 * and none ended for `idleMs`; health checks are not activity. `idleMs` 0 disables it.
 */
export class IdleTracker {
  private inFlight = 0;
  private lastActivity: number;

  constructor(
    private readonly idleMs: number,
    now: number,
  ) {
    this.lastActivity = now;
  }

  callStarted(now: number): void {
    this.inFlight += 1;
    this.lastActivity = now;
  }

  callEnded(now: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.lastActivity = now;
  }

  /** Restarts the idle clock, e.g. when the server (re)starts. */
  reset(now: number): void {
    this.lastActivity = now;
  }

  get callsInFlight(): number {
    return this.inFlight;
  }

  /** When the server becomes idle (epoch ms), or undefined while a call runs or when disabled. */
  idleAt(): number | undefined {
    if (this.idleMs <= 0 || this.inFlight > 0) return undefined;
    return this.lastActivity + this.idleMs;
  }

  isIdle(now: number): boolean {
    const at = this.idleAt();
    return at !== undefined && now >= at;
  }
}
