import { EVENT_SCHEMA_VERSION, type SidecarEvent } from "../core/events.js";

/**
 * What the runtime itself observes about a sandbox (the sidecar cannot report its own
 * death). Same envelope as sidecar events, so one JSON-lines stream carries both.
 */
export interface RuntimeEvent {
  readonly v: typeof EVENT_SCHEMA_VERSION;
  readonly ts: string;
  readonly type: "runtime";
  readonly server: string;
  readonly action:
    | "sandbox-started"
    | "sidecar-exited"
    | "sidecar-restarted"
    | "sidecar-restart-failed"
    | "sidecar-given-up"
    | "server-exited"
    | "cpu-limit-failed"
    | "sandbox-stopped";
  readonly detail?: Readonly<Record<string, unknown>>;
}

export type SandboxEvent = SidecarEvent | RuntimeEvent;

export function runtimeEvent(server: string, action: RuntimeEvent["action"], now: number, detail?: Record<string, unknown>): RuntimeEvent {
  return { v: EVENT_SCHEMA_VERSION, ts: new Date(now).toISOString(), type: "runtime", server, action, ...(detail ? { detail } : {}) };
}

/** A parsed stdout line is an event when it carries the envelope; anything else is refused. */
export function asSidecarEvent(value: unknown): SidecarEvent | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const e = value as Record<string, unknown>;
  if (e["v"] !== EVENT_SCHEMA_VERSION || typeof e["ts"] !== "string" || typeof e["server"] !== "string") return undefined;
  if (e["type"] !== "dns" && e["type"] !== "egress" && e["type"] !== "lifecycle") return undefined;
  return value as SidecarEvent;
}
