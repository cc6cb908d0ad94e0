import type { EgressEvent } from "../core/events.js";

/**
 * The seam between Hangar and OpenTelemetry: the gateway, the supervisor and the scenario
 * runs report what happens through this interface and never import the SDK. With tracing off
 * (no OTEL_* settings) they get NO_TRACING, whose methods do nothing, so the SDK is never
 * loaded (open-tracing.ts imports it only when configured).
 */
export type TraceAttribute = string | number | boolean | readonly string[];
export type TraceAttributes = Readonly<Record<string, TraceAttribute | undefined>>;

/** W3C trace context a client sent with its request (MCP `_meta.traceparent`). */
export interface IncomingTraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export interface ToolCallStart {
  /** Also the key egress events name their parent by (see `egress`). */
  readonly callId: string;
  /** The name the client called (`<server>__<tool>`). */
  readonly exposed: string;
  readonly identity: string;
  readonly session?: string;
  readonly parent?: IncomingTraceContext;
}

export interface CallSpan {
  /** False when nothing is recorded: callers skip building attributes. */
  readonly recording: boolean;
  set(attributes: TraceAttributes): void;
  /** Ends the span; `error` marks it failed. Later calls do nothing. */
  end(outcome: string, error?: string): void;
}

export interface ScenarioStart {
  readonly server: string;
  /** True when the run captured (nothing left the sandbox). */
  readonly capture: boolean;
  readonly run?: string;
}

export interface ScenarioSpan {
  readonly recording: boolean;
  /** A span for one scenario call, under the run; `key` is what `egress` names it by. */
  call(key: string, tool: string, attributes: TraceAttributes): CallSpan;
  end(outcome: string, error?: string): void;
}

/** A server's lifecycle transition, as the supervisor reports it. */
export interface LifecycleTransition {
  readonly server: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly restarts: number;
  readonly upstream?: string;
  readonly lastError?: string;
}

export interface Tracing {
  readonly enabled: boolean;
  /** A gateway tools/call (server span, child of the client's trace context when it sent one). */
  toolCall(start: ToolCallStart): CallSpan;
  /** A replay, quarantine or baseline-record run (one span, one child per scenario call). */
  scenario(start: ScenarioStart): ScenarioSpan;
  /** A sidecar egress or DNS event, as a child span of each call it is attributed to (`parents`: call keys). */
  egress(event: EgressEvent, parents: readonly string[]): void;
  lifecycle(transition: LifecycleTransition): void;
  /** Exports what is buffered now. */
  flush(): Promise<void>;
  /** Ends open spans, exports and stops. Safe to call twice. */
  shutdown(): Promise<void>;
}

const NO_CALL_SPAN: CallSpan = { recording: false, set: () => undefined, end: () => undefined };
const NO_SCENARIO_SPAN: ScenarioSpan = { recording: false, call: () => NO_CALL_SPAN, end: () => undefined };

export const NO_TRACING: Tracing = {
  enabled: false,
  toolCall: () => NO_CALL_SPAN,
  scenario: () => NO_SCENARIO_SPAN,
  egress: () => undefined,
  lifecycle: () => undefined,
  flush: async () => undefined,
  shutdown: async () => undefined,
};
