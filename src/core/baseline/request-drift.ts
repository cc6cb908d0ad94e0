import { compileRoute, type HttpRoute } from "../policy/compiled-policy.js";
import type { BodyKind, RequestShape } from "../request-shape.js";
import { destinationKey, routeKey, type BaselineRequest, type FrozenBaseline } from "./baseline-schema.js";
import { byText, splitRef } from "./canonical.js";

/**
 * Request-shape drift: a request on a known destination that the frozen baseline never saw
 * in that form. Pure, and shared by the CI comparison (`detectDrift`) and the sidecar, which
 * checks each request before forwarding a byte of it (`checkRequestShape`).
 */
export type RequestDriftCode = "new-http-route" | "new-request-field" | "body-not-inspected";
export const REQUEST_DRIFT_CODES: readonly RequestDriftCode[] = ["new-http-route", "new-request-field", "body-not-inspected"];

export type RequestFieldPlace = "body" | "query" | "header";

export interface RequestDriftFinding {
  readonly code: RequestDriftCode;
  /** `new-request-field` only: where the name was and the name itself. */
  readonly field?: { readonly place: RequestFieldPlace; readonly name: string };
}

/** What the baseline saw on one route, as sets for quick lookups. */
export interface RouteShapes {
  readonly queryKeys: ReadonlySet<string>;
  readonly bodyFields: ReadonlySet<string>;
  readonly headerNames: ReadonlySet<string>;
  readonly bodies: ReadonlySet<BodyKind>;
  /** Credential shapes the route's requests carried while learning. */
  readonly credentials: ReadonlySet<string>;
}

/**
 * The routes of one destination. Recorded paths are exact templates; a reviewer may widen
 * one by hand with the policy's globs (`/files/*`, `/v1/**`), since a recorded path never
 * holds a bare `*`.
 */
export interface DestinationRoutes {
  /** By route key (`POST /email`). */
  readonly exact: ReadonlyMap<string, RouteShapes>;
  readonly globs: readonly { readonly route: HttpRoute; readonly shapes: RouteShapes }[];
}

/**
 * The request side of a frozen baseline, for the decision function. Only destinations
 * whose requests the baseline saw are here: on any other (learned as opaque TLS, or by an
 * older Hangar) there is nothing to compare a request with, so it never drifts by shape.
 */
export interface RequestShapeView {
  /** By destination (`name:port`). */
  readonly routes: ReadonlyMap<string, DestinationRoutes>;
}

export function toRouteShapes(r: Pick<BaselineRequest, "queryKeys" | "bodyFields" | "headerNames" | "bodies" | "credentials">): RouteShapes {
  return {
    queryKeys: new Set(r.queryKeys),
    bodyFields: new Set(r.bodyFields),
    headerNames: new Set(r.headerNames),
    bodies: new Set(r.bodies),
    credentials: new Set(r.credentials ?? []),
  };
}

function knownRoute(base: DestinationRoutes, route: { readonly method: string; readonly path: string }): RouteShapes | undefined {
  return base.exact.get(routeKey(route)) ?? base.globs.find((g) => (g.route.method === "*" || g.route.method === route.method) && g.route.path.test(route.path))?.shapes;
}

/**
 * Whether the frozen baseline saw requests on this route of `destination` carry every one of
 * these credential shapes: an API whose normal requests hold a key of that shape is not
 * leaking it by sending it again. Any shape it never saw there, or no baseline, is false.
 */
export function baselineSawCredentials(view: RequestShapeView, destination: string, route: { readonly method: string; readonly path: string }, kinds: readonly string[]): boolean {
  const base = view.routes.get(destination);
  const known = base === undefined ? undefined : knownRoute(base, route);
  return known !== undefined && kinds.length > 0 && kinds.every((k) => known.credentials.has(k));
}

export function toDestinationRoutes(requests: readonly BaselineRequest[]): DestinationRoutes {
  const isGlob = (r: BaselineRequest): boolean => r.path.includes("*") || r.method === "*";
  return {
    exact: new Map(requests.filter((r) => !isGlob(r)).map((r) => [routeKey(r), toRouteShapes(r)] as const)),
    globs: requests.filter(isGlob).map((r) => ({ route: compileRoute(r), shapes: toRouteShapes(r) })),
  };
}

export function toRequestShapeView(baseline: FrozenBaseline): RequestShapeView {
  const routes = new Map<string, DestinationRoutes>();
  for (const d of baseline.destinations) {
    if (d.requests === undefined || d.requests.length === 0) continue;
    routes.set(destinationKey(d), toDestinationRoutes(d.requests));
  }
  return { routes };
}

/** One request, or every request seen on a route (then `bodies` holds each kind seen). */
export interface RouteObservation {
  readonly method: string;
  readonly path: string;
  readonly queryKeys: readonly string[];
  readonly bodyFields: readonly string[];
  readonly headerNames: readonly string[];
  readonly bodies: readonly BodyKind[];
}

const parsed = (kinds: Iterable<BodyKind>): boolean => [...kinds].some((k) => k === "json" || k === "form");

/** The findings for a route on a destination the baseline saw requests on; sorted, stable. */
export function routeDrift(base: DestinationRoutes, route: RouteObservation): RequestDriftFinding[] {
  const known = knownRoute(base, route);
  if (known === undefined) return [{ code: "new-http-route" }];
  const findings: RequestDriftFinding[] = [];
  // A body that could not be read hides its fields: that alone is drift where fields were read before.
  if (route.bodies.includes("not-inspected") && !known.bodies.has("not-inspected") && parsed(known.bodies)) findings.push({ code: "body-not-inspected" });
  const fresh = (place: RequestFieldPlace, names: readonly string[], seen: ReadonlySet<string>): void => {
    for (const name of [...new Set(names)].sort(byText)) if (!seen.has(name)) findings.push({ code: "new-request-field", field: { place, name } });
  };
  fresh("body", route.bodyFields, known.bodyFields);
  fresh("header", route.headerNames, known.headerNames);
  fresh("query", route.queryKeys, known.queryKeys);
  return findings;
}

/**
 * For the decision, per request, before forwarding a byte of it: the drift of one request
 * to `destination` (`name:port`) against the frozen baseline's view (`toBaselineView(b).requests`).
 * Empty means no drift. Each finding is a violation (`requestDriftReason`): blocked in
 * ENFORCING, would-block in OBSERVING; `driftFieldNames` gives the event's `driftFields`.
 */
export function checkRequestShape(view: RequestShapeView, destination: string, shape: RequestShape): RequestDriftFinding[] {
  const base = view.routes.get(destination);
  if (base === undefined) return [];
  return routeDrift(base, { ...shape, bodies: [shape.body] });
}

/** The decision's reason code for a finding: `drift-new-http-route`, `drift-new-request-field`, `drift-body-not-inspected`. */
export function requestDriftReason(code: RequestDriftCode): `drift-${RequestDriftCode}` {
  return `drift-${code}`;
}

/** The names a request's findings are about, for an event: `body Bcc`, `query page`, `header x-token`. */
export function driftFieldNames(findings: readonly RequestDriftFinding[]): string[] {
  return findings.flatMap((f) => (f.field === undefined ? [] : [`${f.field.place} ${f.field.name}`]));
}

/** `api.postmarkapp.com` on the web's own ports, `api.example.com:8443` elsewhere. */
export function hostText(destination: string): string {
  const [name, port] = splitRef(destination);
  const host = name.includes(":") ? `[${name}]` : name;
  return port === 443 || port === 80 ? host : `${host}:${port}`;
}

const PLACE_TEXT: Readonly<Record<RequestFieldPlace, string>> = { body: "body field", query: "query key", header: "header" };

/** The request as a reader writes it: `POST api.postmarkapp.com/email`. */
export function requestText(destination: string, route: { readonly method: string; readonly path: string }): string {
  return `${route.method} ${hostText(destination)}${route.path === "*" ? " *" : route.path}`;
}

/** One sentence naming who, the destination and the field; `who` is a tool name or whoText's phrase. */
export function requestDriftSentence(who: string, destination: string, route: { readonly method: string; readonly path: string }, finding: RequestDriftFinding, why?: string): string {
  const request = requestText(destination, route);
  switch (finding.code) {
    case "new-http-route":
      return `${who} sent ${request}, a route the baseline never saw on ${destination}`;
    case "new-request-field":
      return `${who} sent ${PLACE_TEXT[finding.field?.place ?? "body"]} ${finding.field?.name ?? "?"} to ${request}, never seen in the baseline`;
    case "body-not-inspected":
      return `${who} sent ${request} with a body Hangar could not inspect${why !== undefined ? ` (${why})` : ""}; the baseline saw only readable bodies there`;
  }
}
