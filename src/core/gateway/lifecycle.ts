import { HangarError } from "../errors.js";

/**
 * The lifecycle of one upstream server, as the gateway drives it:
 *
 *   COLD ──start──▶ STARTING ──ready──▶ READY ──idle──▶ COLD
 *                      │                  │
 *                      └──fail──▶ DEGRADED ◀──exit / failed health check
 *                                   │  ▲
 *                                   └──┘ restart (STARTING again) with backoff
 *   any ──shutdown or restart budget spent──▶ DEAD (terminal)
 *
 * A server whose start is refused (not approved) stays where it was: refusal is a verdict,
 * not a state, so granting the approval later lets the next call start it.
 */
export const SERVER_STATES = ["COLD", "STARTING", "READY", "DEGRADED", "DEAD"] as const;
export type ServerState = (typeof SERVER_STATES)[number];

const ALLOWED: Readonly<Record<ServerState, readonly ServerState[]>> = {
  COLD: ["STARTING", "DEAD"],
  STARTING: ["READY", "DEGRADED", "DEAD"],
  READY: ["DEGRADED", "COLD", "DEAD"],
  DEGRADED: ["STARTING", "DEAD"],
  DEAD: [],
};

export function canTransition(from: ServerState, to: ServerState): boolean {
  return ALLOWED[from].includes(to);
}

export interface StateChange {
  readonly from: ServerState;
  readonly to: ServerState;
  /** Epoch ms. */
  readonly at: number;
  /** Why, in a few words: "first call", "exited", "idle for 600000 ms". */
  readonly reason: string;
}

export class Lifecycle {
  private current: ServerState = "COLD";
  private changedAt: number;

  constructor(now: number) {
    this.changedAt = now;
  }

  get state(): ServerState {
    return this.current;
  }

  /** When the current state was entered (epoch ms). */
  get since(): number {
    return this.changedAt;
  }

  /** Moves to `to`; throws HANGAR_GATEWAY_ILLEGAL_TRANSITION when the table does not allow it. */
  transition(to: ServerState, at: number, reason: string): StateChange {
    const from = this.current;
    if (!canTransition(from, to)) {
      throw new HangarError("HANGAR_GATEWAY_ILLEGAL_TRANSITION", `illegal lifecycle transition ${from} → ${to} (${reason})`, { data: { from, to, reason } });
    }
    this.current = to;
    this.changedAt = at;
    return { from, to, at, reason };
  }
}
