import type { Protocol, ReasonCode, VerdictKind } from "./decision.js";
import type { BodyKind, NotInspectedReason } from "./request-shape.js";

/**
 * The sidecar event schema, version 1: one JSON object per line on the sidecar's stdout.
 * Every attempt yields a `decide` event; an attempt that opened a connection also yields a
 * `close` event with byte counts. Consumers must ignore fields they do not know.
 */
export const EVENT_SCHEMA_VERSION = 1 as const;

export interface EgressEvent {
  readonly v: typeof EVENT_SCHEMA_VERSION;
  readonly ts: string;
  readonly id: string;
  readonly type: "dns" | "egress";
  readonly phase: "decide" | "close";
  readonly server: string;
  readonly verdict: VerdictKind;
  readonly reasons: readonly ReasonCode[];
  readonly rule?: string;
  readonly name?: string;
  /**
   * The name exactly as the client sent it, when that differs from `name` (which is normalised:
   * lower case, no trailing dot, punycode). Case carries data too: a base64 label stays readable.
   * Proxy events keep the sent spelling in `sni`, `host` and `connect`.
   */
  readonly nameAsSent?: string;
  readonly port?: number;
  readonly ip?: string;
  readonly protocol: Protocol;
  readonly path?: "transparent" | "explicit" | "dns";
  readonly recordType?: string;
  readonly sni?: string;
  readonly host?: string;
  readonly connect?: string;
  readonly method?: string;
  readonly url?: string;
  /**
   * The request's shape (`core/request-shape.ts`), on decide events of HTTP requests the
   * sidecar sees: names only, never a query, header or body value.
   */
  readonly pathTemplate?: string;
  readonly queryKeys?: readonly string[];
  readonly headerNames?: readonly string[];
  readonly bodyKind?: BodyKind;
  /** Field paths of a json or form body (`To`, `Attachments[].Name`). */
  readonly bodyFields?: readonly string[];
  /** Why the body yielded no fields, when `bodyKind` is `not-inspected`. */
  readonly bodyNotInspected?: NotInspectedReason;
  /** Request drift against the frozen baseline: the names it never saw, as `body Bcc`, `query page`, `header x-token`. */
  readonly driftFields?: readonly string[];
  /** Secrets found where they do not belong (`POSTMARK_TOKEN sentinel in body`): names and places, never values. */
  readonly secretLeaks?: readonly string[];
  /** Credential shapes found in the request (`aws-access-key`): `credential-pattern`. */
  readonly credentials?: readonly string[];
  /** Secrets the sidecar wrote into this request's declared header (names only). */
  readonly injected?: readonly string[];
  readonly client?: string;
  readonly bytesUp?: number;
  readonly bytesDown?: number;
  readonly durationMs?: number;
  readonly error?: string;
}

export interface LifecycleEvent {
  readonly v: typeof EVENT_SCHEMA_VERSION;
  readonly ts: string;
  readonly type: "lifecycle";
  readonly server: string;
  /** `counters` carries the rate and tunnelling counts (no names) for the control plane to keep across a restart; it is not an audit event. */
  readonly action: "started" | "reloaded" | "reload-failed" | "closing" | "closed" | "counters";
  readonly detail?: Readonly<Record<string, unknown>>;
}

export type SidecarEvent = EgressEvent | LifecycleEvent;

/** Where events go. The sidecar never writes to stdout itself; its entry point wires this. */
export interface EventSink {
  emit(event: SidecarEvent): void;
}
