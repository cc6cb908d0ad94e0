import { byDestinationRef, byText } from "./canonical.js";
import { destinationKey, routeKey, type Baseline, type BaselineDestination, type BaselineRequest, type BaselineTool, type BaselineTunnelling } from "./baseline-schema.js";

/**
 * What changed in behaviour between two baselines. Counts, byte totals and timestamps move
 * with every recording, so they are not differences; what a server reaches, asks, calls and
 * how fast it does so at most, are.
 */
export interface FieldChange {
  readonly field: string;
  readonly before: string | number | readonly (string | number)[];
  readonly after: string | number | readonly (string | number)[];
}

export interface EntryChange {
  readonly key: string;
  readonly changes: readonly FieldChange[];
}

export interface SectionDiff<T> {
  readonly added: readonly T[];
  readonly removed: readonly T[];
  readonly changed: readonly EntryChange[];
}

export interface BaselineSide {
  readonly server: string;
  readonly status: Baseline["status"];
  readonly frozenAt?: string;
}

/** A route with the destination (`name:port`) it was seen on. */
export type DestinationRoute = BaselineRequest & { readonly destination: string };

export interface BaselineDiff {
  readonly a: BaselineSide;
  readonly b: BaselineSide;
  /** True when the two describe the same behaviour (a status change alone is not a difference). */
  readonly same: boolean;
  readonly settings: readonly FieldChange[];
  readonly destinations: SectionDiff<BaselineDestination>;
  readonly dns: SectionDiff<{ readonly name: string; readonly type: string }>;
  readonly tools: SectionDiff<BaselineTool>;
  readonly tunnelling: SectionDiff<BaselineTunnelling>;
  /** Request shapes, keyed `name:port METHOD /path`; changes are the names each route uses. */
  readonly requests: SectionDiff<DestinationRoute>;
}

const side = (b: Baseline): BaselineSide => ({ server: b.server, status: b.status, ...(b.frozenAt !== undefined ? { frozenAt: b.frozenAt } : {}) });

function sameList(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function section<T>(a: readonly T[], b: readonly T[], key: (x: T) => string, compare: (x: T, y: T) => FieldChange[]): SectionDiff<T> {
  const before = new Map(a.map((x) => [key(x), x] as const));
  const after = new Map(b.map((x) => [key(x), x] as const));
  const changed: EntryChange[] = [];
  for (const [k, x] of before) {
    const y = after.get(k);
    if (y === undefined) continue;
    const changes = compare(x, y);
    if (changes.length > 0) changed.push({ key: k, changes });
  }
  return {
    added: b.filter((x) => !before.has(key(x))),
    removed: a.filter((x) => !after.has(key(x))),
    changed,
  };
}

function listChange(field: string, before: readonly (string | number)[], after: readonly (string | number)[]): FieldChange[] {
  return sameList(before, after) ? [] : [{ field, before, after }];
}

function valueChange(field: string, before: string | number, after: string | number): FieldChange[] {
  return before === after ? [] : [{ field, before, after }];
}

/** Both baselines should be canonical (as loaded or recorded), so lists compare in order. */
export function diffBaselines(a: Baseline, b: Baseline): BaselineDiff {
  const settings = [
    ...valueChange("server", a.server, b.server),
    ...valueChange("status", a.status, b.status),
    ...valueChange("rateTolerance", a.rateTolerance, b.rateTolerance),
  ];
  const destinations = section(a.destinations, b.destinations, destinationKey, (x, y) => [
    ...listChange("protocols", x.protocols, y.protocols),
    ...listChange("tools", x.tools, y.tools),
    ...valueChange("perMinute.max", x.perMinute.max, y.perMinute.max),
  ]);
  const dns = section(
    a.dns.map((e) => ({ name: e.name, type: e.type })),
    b.dns.map((e) => ({ name: e.name, type: e.type })),
    (e) => `${e.name} ${e.type}`,
    () => [],
  );
  const tools = section(a.tools, b.tools, (t) => t.name, (x, y) => [
    ...listChange("destinations", [...x.destinations].sort(byDestinationRef), [...y.destinations].sort(byDestinationRef)),
    ...listChange("sharedDestinations", [...x.sharedDestinations].sort(byDestinationRef), [...y.sharedDestinations].sort(byDestinationRef)),
    ...valueChange("perMinute.max", x.perMinute.max, y.perMinute.max),
  ]);
  const tunnelling = section(a.tunnelling, b.tunnelling, (t) => t.rule, (x, y) => listChange("signals", [...x.signals].sort(byText), [...y.signals].sort(byText)));
  const routes = (x: Baseline): DestinationRoute[] => x.destinations.flatMap((d) => (d.requests ?? []).map((r) => ({ ...r, destination: destinationKey(d) })));
  const requests = section(routes(a), routes(b), (r) => `${r.destination} ${routeKey(r)}`, (x, y) => [
    ...listChange("bodyFields", x.bodyFields, y.bodyFields),
    ...listChange("queryKeys", x.queryKeys, y.queryKeys),
    ...listChange("headerNames", x.headerNames, y.headerNames),
    ...listChange("bodies", x.bodies, y.bodies),
    ...listChange("credentials", x.credentials ?? [], y.credentials ?? []),
    ...listChange("tools", x.tools, y.tools),
  ]);
  const empty = (s: SectionDiff<unknown>): boolean => s.added.length + s.removed.length + s.changed.length === 0;
  return {
    a: side(a),
    b: side(b),
    same: settings.every((c) => c.field === "status") && empty(destinations) && empty(dns) && empty(tools) && empty(tunnelling) && empty(requests),
    settings,
    destinations,
    dns,
    tools,
    tunnelling,
    requests,
  };
}
