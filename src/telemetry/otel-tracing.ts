import { diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { Logger } from "pino";
import type { EgressEvent } from "../core/events.js";
import type { OtelSettings } from "./otel-settings.js";
import type { CallSpan, LifecycleTransition, ScenarioSpan, ScenarioStart, ToolCallStart, TraceAttributes, Tracing } from "./tracing.js";

/**
 * Tracing through the OpenTelemetry SDK: one tracer provider per process (not registered
 * globally), a batch processor and an OTLP/HTTP exporter (protobuf or JSON). Loaded only
 * by open-tracing.ts, only when configured.
 *
 * Egress events reach the gateway after the fact (by the sidecar's event stream), often
 * after the call's span has ended; so each becomes a child span of the call it is attributed
 * to, with the sidecar's own timestamps, rather than an event on the call's span. A decided
 * connection's span stays open until its `close` event brings the bytes.
 */
export interface OtelTracingOptions {
  readonly logger: Logger;
  readonly version: string;
  /** For tests and the bench: export here instead of OTLP. */
  readonly exporter?: SpanExporter;
  readonly now?: () => number;
}

type EnabledSettings = Extract<OtelSettings, { enabled: true }>;

/** Ended calls stay parents for late egress events this long. */
const CALL_RETAIN_MS = 60_000;
const MAX_CALLS = 100_000;
/** A connection whose close never came is ended after this long. */
const EGRESS_OPEN_MS = 10 * 60_000;
const MAX_OPEN_EGRESS = 10_000;

export class OtelTracing implements Tracing {
  readonly enabled = true;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();
  /** Call key → its span's context, insertion (start) order, so pruning looks at the head only. */
  private readonly calls = new Map<string, { readonly context: SpanContext; readonly at: number }>();
  /** Sidecar attempt id → the spans its `close` event ends. */
  private readonly openEgress = new Map<string, { readonly spans: Span[]; readonly at: number }>();
  /** Server → its start span, from STARTING to READY (or the failure). */
  private readonly starts = new Map<string, Span>();
  private readonly now: () => number;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly provider: BasicTracerProvider,
    version: string,
    now: () => number,
  ) {
    this.tracer = provider.getTracer("hangar", version);
    this.now = now;
  }

  static async open(settings: EnabledSettings, options: OtelTracingOptions): Promise<OtelTracing> {
    const logger = options.logger;
    // The SDK reports export failures through its diagnostics channel: into our log, warnings and up.
    diag.setLogger(
      {
        error: (message, ...args) => logger.warn({ otel: args.length > 0 ? args.map(String) : undefined }, `OpenTelemetry: ${message}`),
        warn: (message, ...args) => logger.warn({ otel: args.length > 0 ? args.map(String) : undefined }, `OpenTelemetry: ${message}`),
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    const exporter = options.exporter ?? (await otlpExporter(settings));
    const resource = detectResources({ detectors: [envDetector] }).merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName, [ATTR_SERVICE_VERSION]: options.version }));
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
    return new OtelTracing(provider, options.version, options.now ?? Date.now);
  }

  toolCall(start: ToolCallStart): CallSpan {
    const parent = start.parent === undefined ? ROOT_CONTEXT : this.propagator.extract(ROOT_CONTEXT, start.parent, CARRIER_GETTER);
    const span = this.tracer.startSpan(
      `tools/call ${start.exposed}`,
      {
        kind: SpanKind.SERVER,
        attributes: attributes({
          "mcp.method.name": "tools/call",
          "gen_ai.operation.name": "execute_tool",
          "gen_ai.tool.name": start.exposed,
          "hangar.call_id": start.callId,
          "hangar.identity": start.identity,
          "mcp.session.id": start.session,
        }),
      },
      parent,
    );
    this.remember(start.callId, span.spanContext());
    return callSpan(span);
  }

  scenario(start: ScenarioStart): ScenarioSpan {
    const run = this.tracer.startSpan("hangar.scenario", { kind: SpanKind.INTERNAL, attributes: attributes({ "hangar.server": start.server, "hangar.scenario.capture": start.capture, "hangar.run": start.run }) }, ROOT_CONTEXT);
    const runContext = trace.setSpan(ROOT_CONTEXT, run);
    let ended = false;
    return {
      recording: true,
      call: (key, tool, attrs) => {
        const span = this.tracer.startSpan(`tools/call ${tool}`, { kind: SpanKind.CLIENT, attributes: attributes({ "mcp.method.name": "tools/call", "gen_ai.tool.name": tool, "hangar.server": start.server, ...attrs }) }, runContext);
        this.remember(key, span.spanContext());
        return callSpan(span);
      },
      end: (outcome, error) => {
        if (ended) return;
        ended = true;
        finish(run, outcome, error);
      },
    };
  }

  egress(event: EgressEvent, parents: readonly string[]): void {
    const at = Date.parse(event.ts);
    const time = Number.isFinite(at) ? at : this.now();
    if (event.phase === "close") {
      const open = this.openEgress.get(event.id);
      if (open !== undefined) {
        this.openEgress.delete(event.id);
        for (const span of open.spans) {
          span.setAttributes(closeAttributes(event));
          if (event.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: event.error });
          span.end(time);
        }
        return;
      }
      // Its decide was never seen (or ended long ago): the whole connection in one span.
      for (const span of this.egressSpans(event, parents, time - (event.durationMs ?? 0))) {
        span.setAttributes(closeAttributes(event));
        span.end(time);
      }
      return;
    }
    const spans = this.egressSpans(event, parents, time);
    // DNS answers and refusals are over when decided; a connection lasts until its close.
    if (event.type === "dns" || event.verdict === "block") {
      for (const span of spans) span.end(time);
      return;
    }
    this.pruneEgress();
    const open = this.openEgress.get(event.id);
    if (open !== undefined) open.spans.push(...spans);
    else this.openEgress.set(event.id, { spans, at: this.now() });
  }

  lifecycle(t: LifecycleTransition): void {
    const attrs = attributes({ "hangar.server": t.server, "hangar.lifecycle.from": t.from, "hangar.lifecycle.to": t.to, "hangar.lifecycle.reason": t.reason, "hangar.restarts": t.restarts, "hangar.upstream": t.upstream });
    const open = this.starts.get(t.server);
    if (t.to === "STARTING") {
      open?.end();
      this.starts.set(t.server, this.tracer.startSpan("hangar.server.start", { kind: SpanKind.INTERNAL, attributes: attrs }, ROOT_CONTEXT));
      return;
    }
    if (open !== undefined) {
      this.starts.delete(t.server);
      open.addEvent("state", attrs);
      if (t.upstream !== undefined) open.setAttribute("hangar.upstream", t.upstream);
      open.setAttribute("hangar.lifecycle.to", t.to);
      if (t.to !== "READY") open.setStatus({ code: SpanStatusCode.ERROR, message: t.lastError ?? `${t.to}: ${t.reason}` });
      open.end();
      return;
    }
    const span = this.tracer.startSpan("hangar.server.state", { kind: SpanKind.INTERNAL, attributes: { ...attrs, ...(t.lastError !== undefined ? { "hangar.last_error": t.lastError } : {}) } }, ROOT_CONTEXT);
    if (t.to === "DEGRADED" || t.to === "DEAD") span.setStatus({ code: SpanStatusCode.ERROR, ...(t.lastError !== undefined ? { message: t.lastError } : {}) });
    span.end();
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    this.closing ??= (async () => {
      for (const { spans } of this.openEgress.values()) for (const span of spans) span.end();
      this.openEgress.clear();
      for (const span of this.starts.values()) span.end();
      this.starts.clear();
      await this.provider.shutdown();
    })();
    return this.closing;
  }

  private egressSpans(event: EgressEvent, parents: readonly string[], startTime: number): Span[] {
    const contexts: Context[] = [];
    for (const key of parents) {
      const parent = this.calls.get(key);
      if (parent !== undefined) contexts.push(trace.setSpanContext(ROOT_CONTEXT, parent.context));
    }
    // Traffic no call caused (a server's start-up, a background timer) is a trace of its own.
    if (contexts.length === 0) contexts.push(ROOT_CONTEXT);
    const attrs = egressAttributes(event);
    return contexts.map((ctx) => {
      const span = this.tracer.startSpan(event.type === "dns" ? "hangar.dns" : "hangar.egress", { kind: SpanKind.INTERNAL, startTime, attributes: attrs }, ctx);
      if (event.verdict === "block") span.setStatus({ code: SpanStatusCode.ERROR, message: `blocked: ${event.reasons.join(", ")}` });
      return span;
    });
  }

  private remember(key: string, context: SpanContext): void {
    const now = this.now();
    this.calls.delete(key);
    this.calls.set(key, { context, at: now });
    for (const [k, v] of this.calls) {
      if (v.at >= now - CALL_RETAIN_MS && this.calls.size <= MAX_CALLS) break;
      this.calls.delete(k);
    }
  }

  private pruneEgress(): void {
    const now = this.now();
    for (const [id, open] of this.openEgress) {
      if (open.at >= now - EGRESS_OPEN_MS && this.openEgress.size < MAX_OPEN_EGRESS) break;
      this.openEgress.delete(id);
      for (const span of open.spans) {
        span.setAttribute("hangar.egress.close_seen", false);
        span.end();
      }
    }
  }
}

async function otlpExporter(settings: EnabledSettings): Promise<SpanExporter> {
  // Only the chosen encoding's code is loaded (protobuf brings its own runtime).
  if (settings.protocol === "http/json") {
    const { OTLPTraceExporter } = commonJsExports(await import("@opentelemetry/exporter-trace-otlp-http"));
    return new OTLPTraceExporter({ url: settings.url });
  }
  const { OTLPTraceExporter } = commonJsExports(await import("@opentelemetry/exporter-trace-otlp-proto"));
  return new OTLPTraceExporter({ url: settings.url });
}

/**
 * A CommonJS package's exports from a dynamic import. Node gives them as named exports; the
 * CLI bundle (esbuild, with code splitting) puts a CommonJS module in a chunk of its own whose
 * only export is `default`, the module's `exports` object.
 */
function commonJsExports<T extends { OTLPTraceExporter?: unknown }>(ns: T): T {
  if (ns.OTLPTraceExporter !== undefined) return ns;
  return (ns as unknown as { readonly default: T }).default;
}

const CARRIER_GETTER = {
  get: (carrier: { readonly traceparent: string; readonly tracestate?: string }, key: string): string | undefined =>
    key === "traceparent" ? carrier.traceparent : key === "tracestate" ? carrier.tracestate : undefined,
  keys: (): string[] => ["traceparent", "tracestate"],
};

function attributes(values: TraceAttributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? [...(value as readonly string[])] : (value as string | number | boolean);
  }
  return out;
}

function callSpan(span: Span): CallSpan {
  let ended = false;
  return {
    recording: span.isRecording(),
    set: (values) => {
      if (!ended) span.setAttributes(attributes(values));
    },
    end: (outcome, error) => {
      if (ended) return;
      ended = true;
      finish(span, outcome, error);
    },
  };
}

function finish(span: Span, outcome: string, error: string | undefined): void {
  span.setAttribute("hangar.outcome", outcome);
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}

/** What the sidecar decided, names only: never a URL's query, a header's or a body's values. */
function egressAttributes(e: EgressEvent): Attributes {
  return attributes({
    "hangar.server": e.server,
    "hangar.egress.id": e.id,
    "hangar.egress.type": e.type,
    "hangar.egress.phase": e.phase,
    "hangar.egress.verdict": e.verdict,
    "hangar.egress.reasons": e.reasons,
    "hangar.egress.rule": e.rule,
    "hangar.egress.path": e.path,
    "server.address": e.name,
    "server.port": e.port,
    "network.peer.address": e.ip,
    "network.protocol.name": e.protocol,
    "dns.question.type": e.recordType,
    "tls.client.server_name": e.sni,
    "hangar.egress.host": e.host,
    "hangar.egress.connect": e.connect,
    "http.request.method": e.method,
    "url.template": e.pathTemplate,
    "hangar.egress.drift_fields": e.driftFields,
  });
}

function closeAttributes(e: EgressEvent): Attributes {
  return attributes({
    "hangar.egress.bytes_up": e.bytesUp ?? 0,
    "hangar.egress.bytes_down": e.bytesDown ?? 0,
    "hangar.egress.duration_ms": e.durationMs,
    "hangar.egress.error": e.error,
    "hangar.egress.close_seen": true,
  });
}
