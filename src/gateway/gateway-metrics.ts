import type { ToolCallOutcome } from "../core/audit/audit-record.js";
import type { EgressEvent } from "../core/events.js";
import { SERVER_STATES, type ServerState } from "../core/gateway/lifecycle.js";
import { MetricsRegistry } from "./metrics-registry.js";

/** The gateway's Prometheus metrics, served at /metrics on the HTTP endpoint. */
export class GatewayMetrics {
  readonly registry: MetricsRegistry;
  private readonly toolCalls;
  private readonly toolLatency;
  private readonly egress;
  private readonly drift;
  private readonly state;
  private readonly restarts;
  private readonly breakerOpen;

  constructor(registry = new MetricsRegistry()) {
    this.registry = registry;
    this.toolCalls = registry.counter("hangar_tool_calls_total", "Tool calls through the gateway, by server, tool and outcome.", ["server", "tool", "outcome"]);
    this.toolLatency = registry.histogram("hangar_tool_call_duration_seconds", "Tool call latency through the gateway (calls that reached the server).", ["server", "tool"]);
    this.egress = registry.counter("hangar_egress_events_total", "Egress and DNS decisions of each server's sidecar, by destination host and verdict.", ["server", "host", "verdict"]);
    this.drift = registry.counter("hangar_manifest_drift_total", "Tool manifests that differed from their approval.", ["server"]);
    this.state = registry.gauge("hangar_server_state", "1 for the state each server is in, 0 for the others.", ["server", "state"]);
    this.restarts = registry.counter("hangar_server_restarts_total", "Restarts after an exit, a failed health check or a failed start.", ["server"]);
    this.breakerOpen = registry.gauge("hangar_breaker_open", "1 while a server's circuit breaker is open.", ["server"]);
  }

  toolCall(server: string, tool: string, outcome: ToolCallOutcome, seconds: number | undefined): void {
    this.toolCalls.inc({ server, tool, outcome });
    if (seconds !== undefined) this.toolLatency.observe({ server, tool }, seconds);
  }

  egressEvent(event: EgressEvent): void {
    // One count per attempt: the decide event; its close carries bytes, not a new verdict.
    if (event.phase !== "decide") return;
    const host = event.name ?? event.sni ?? event.host ?? event.ip ?? "unknown";
    this.egress.inc({ server: event.server, host, verdict: event.verdict });
  }

  manifestDrift(server: string): void {
    this.drift.inc({ server });
  }

  serverState(server: string, current: ServerState): void {
    for (const state of SERVER_STATES) this.state.set({ server, state }, state === current ? 1 : 0);
  }

  restarted(server: string): void {
    this.restarts.inc({ server });
  }

  breaker(server: string, open: boolean): void {
    this.breakerOpen.set({ server }, open ? 1 : 0);
  }

  render(): string {
    return this.registry.render();
  }
}
