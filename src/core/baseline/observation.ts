import type { EgressEvent } from "../events.js";

/**
 * What the recorder folds. The runtime knows which tool calls are in flight for a server
 * and attaches them to each sidecar event: one tool when exactly one call is in flight,
 * all of them otherwise, none outside any call.
 */
export interface Attribution {
  readonly tools: readonly string[];
}

export type AttributedEgressEvent = EgressEvent & { readonly attribution?: Attribution };

export interface EventObservation {
  readonly kind: "event";
  readonly event: AttributedEgressEvent;
}

export interface ToolCallObservation {
  readonly kind: "tool-call";
  readonly tool: string;
  /** An ISO timestamp or epoch milliseconds, from the runtime's injected clock. */
  readonly ts: string | number;
}

export type Observation = EventObservation | ToolCallObservation;

/** Epoch milliseconds, or undefined for a timestamp nobody can read. */
export function timestampMs(ts: string | number): number | undefined {
  const ms = typeof ts === "number" ? ts : Date.parse(ts);
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : undefined;
}
