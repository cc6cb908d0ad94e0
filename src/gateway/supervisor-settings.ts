/** How the gateway runs each server: timeouts, health checks, idle shutdown, breaker and restarts. */
export interface SupervisorSettings {
  /** Launch + MCP initialize + first list. */
  readonly startTimeoutMs: number;
  readonly callTimeoutMs: number;
  /** 0 disables health checks. */
  readonly healthIntervalMs: number;
  readonly pingTimeoutMs: number;
  /** Stop a server with no calls for this long; 0 keeps it running. */
  readonly idleTimeoutMs: number;
  readonly breaker: { readonly failureThreshold: number; readonly coolDownMs: number };
  readonly restart: { readonly initialDelayMs: number; readonly maxDelayMs: number; readonly maxAttempts: number };
}

export const DEFAULT_SUPERVISOR_SETTINGS: SupervisorSettings = {
  startTimeoutMs: 30_000,
  callTimeoutMs: 120_000,
  healthIntervalMs: 15_000,
  pingTimeoutMs: 5_000,
  idleTimeoutMs: 600_000,
  breaker: { failureThreshold: 3, coolDownMs: 30_000 },
  restart: { initialDelayMs: 250, maxDelayMs: 30_000, maxAttempts: 8 },
};
