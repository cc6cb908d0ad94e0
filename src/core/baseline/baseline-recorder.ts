import type { ReasonCode } from "../decision.js";
import { parseIp } from "../ip.js";
import { normaliseHostName } from "../names.js";
import { shapeFromEvent, type BodyKind, type RequestShape } from "../request-shape.js";
import { BASELINE_VERSION, CONNECTION_PROTOCOLS, destinationKey, routeKey, TUNNELLING_SIGNALS, type Baseline, type ConnectionProtocol, type TunnellingSignal } from "./baseline-schema.js";
import { canonicalBaseline } from "./canonical.js";
import { timestampMs, type AttributedEgressEvent, type Observation } from "./observation.js";
import { minuteOf, RateCounter, windowMinutes, type MinuteWindow } from "./rate-stats.js";

export interface RecorderOptions {
  readonly server: string;
  /** Copied into the baseline from the policy's `baseline.rateTolerance`. */
  readonly rateTolerance?: number;
  /** Distinct destinations, DNS entries, tools and tunnelling names kept, each (the input is the server's to choose). */
  readonly maxEntries?: number;
}

export const DEFAULT_RATE_TOLERANCE = 3;
const MAX_TUNNELLING_EXAMPLES = 5;
/** Distinct query keys, body fields and header names kept per route, each. */
const MAX_ROUTE_NAMES = 1000;

interface Seen {
  first: number;
  last: number;
}

interface Attributed extends Seen {
  tools: Set<string>;
}

interface DestinationState extends Attributed {
  readonly name: string;
  readonly port: number;
  protocols: Set<ConnectionProtocol>;
  count: number;
  bytesUp: number;
  bytesDown: number;
  rate: RateCounter;
  routes: Map<string, RouteState>;
}

interface RouteState extends Attributed {
  readonly method: string;
  readonly path: string;
  queryKeys: Set<string>;
  bodyFields: Set<string>;
  headerNames: Set<string>;
  bodies: Set<BodyKind>;
  credentials: Set<string>;
  count: number;
}

interface DnsState extends Attributed {
  readonly name: string;
  readonly type: string;
  count: number;
}

interface ToolState extends Seen {
  calls: number;
  rate: RateCounter;
  destinations: Set<string>;
  shared: Set<string>;
}

interface TunnelState extends Attributed {
  signals: Set<TunnellingSignal>;
  count: number;
  names: Set<string>;
}

const isProtocol = (p: string): p is ConnectionProtocol => (CONNECTION_PROTOCOLS as readonly string[]).includes(p);
const isSignal = (r: ReasonCode): r is TunnellingSignal => (TUNNELLING_SIGNALS as readonly string[]).includes(r);

/**
 * Folds sidecar events (with their tool attribution) and tool calls into a learning
 * baseline. Pure: time comes only from the observations' timestamps. Anything it cannot
 * read (another server's event, a bad timestamp, a name that is not a host) is counted in
 * `ignored` and otherwise skipped, never thrown.
 */
export class BaselineRecorder {
  private readonly destinations = new Map<string, DestinationState>();
  private readonly dns = new Map<string, DnsState>();
  private readonly tools = new Map<string, ToolState>();
  private readonly tunnels = new Map<string, TunnelState>();
  private window: MinuteWindow | undefined;
  private first: number | undefined;
  private last: number | undefined;
  private events = 0;
  private toolCalls = 0;
  private ignoredCount = 0;
  private readonly maxEntries: number;

  constructor(private readonly options: RecorderOptions) {
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** Observations skipped because they could not be read or would exceed `maxEntries`. */
  get ignored(): number {
    return this.ignoredCount;
  }

  observe(o: Observation): boolean {
    return o.kind === "tool-call" ? this.recordToolCall(o.tool, o.ts) : this.recordEvent(o.event);
  }

  recordToolCall(tool: string, ts: string | number): boolean {
    const ms = timestampMs(ts);
    if (ms === undefined || tool.length === 0 || tool.length > 200) return this.ignore();
    const state = this.tool(tool, ms);
    if (state === undefined) return this.ignore();
    state.calls += 1;
    state.rate.hit(ms);
    this.toolCalls += 1;
    this.touch(ms);
    return true;
  }

  recordEvent(event: AttributedEgressEvent): boolean {
    const ms = timestampMs(event.ts);
    if (ms === undefined || event.server !== this.options.server) return this.ignore();
    const tools = [...new Set(event.attribution?.tools ?? [])].filter((t) => t.length > 0 && t.length <= 200);
    const signals = event.reasons.filter(isSignal);
    let folded: boolean;
    if (signals.length > 0) folded = event.phase === "close" || this.recordTunnelling(event, signals, tools, ms);
    else if (event.type === "dns") folded = event.phase === "decide" && this.recordDns(event, tools, ms);
    else folded = this.recordConnection(event, tools, ms);
    if (!folded) return this.ignore();
    this.events += 1;
    this.touch(ms);
    return true;
  }

  snapshot(): Baseline {
    const iso = (ms: number): string => new Date(ms).toISOString();
    const seen = (s: Seen): { firstSeen: string; lastSeen: string } => ({ firstSeen: iso(s.first), lastSeen: iso(s.last) });
    const w = this.window;
    return canonicalBaseline({
      version: BASELINE_VERSION,
      server: this.options.server,
      status: "learning",
      rateTolerance: this.options.rateTolerance ?? DEFAULT_RATE_TOLERANCE,
      observed: {
        ...(this.first !== undefined ? { from: iso(this.first) } : {}),
        ...(this.last !== undefined ? { to: iso(this.last) } : {}),
        minutes: windowMinutes(w),
        events: this.events,
        toolCalls: this.toolCalls,
      },
      destinations: [...this.destinations.values()].map((d) => {
        const stats = d.rate.stats(w);
        const requests = [...d.routes.values()].map((r) => ({
          method: r.method,
          path: r.path,
          queryKeys: [...r.queryKeys],
          bodyFields: [...r.bodyFields],
          headerNames: [...r.headerNames],
          bodies: [...r.bodies],
          ...(r.credentials.size > 0 ? { credentials: [...r.credentials] } : {}),
          count: r.count,
          ...seen(r),
          tools: [...r.tools],
        }));
        return {
          name: d.name,
          port: d.port,
          protocols: [...d.protocols],
          count: d.count,
          ...seen(d),
          bytesUp: d.bytesUp,
          bytesDown: d.bytesDown,
          perMinute: { max: stats.max, p95: stats.p95 },
          tools: [...d.tools],
          ...(requests.length > 0 ? { requests } : {}),
        };
      }),
      dns: [...this.dns.values()].map((d) => ({ name: d.name, type: d.type, count: d.count, ...seen(d), tools: [...d.tools] })),
      tools: [...this.tools.entries()].map(([name, t]) => ({ name, calls: t.calls, ...seen(t), perMinute: t.rate.stats(w), destinations: [...t.destinations], sharedDestinations: [...t.shared].filter((k) => !t.destinations.has(k)) })),
      tunnelling: [...this.tunnels.entries()].map(([rule, t]) => ({
        rule,
        signals: [...t.signals],
        count: t.count,
        names: t.names.size,
        examples: [...t.names].sort().slice(0, MAX_TUNNELLING_EXAMPLES),
        ...seen(t),
        tools: [...t.tools],
      })),
    });
  }

  private recordConnection(event: AttributedEgressEvent, tools: readonly string[], ms: number): boolean {
    const name = destinationName(event);
    if (name === undefined || event.port === undefined || !Number.isInteger(event.port) || event.port < 1 || event.port > 65535) return false;
    const key = destinationKey({ name, port: event.port });
    let d = this.destinations.get(key);
    if (d === undefined) {
      if (this.destinations.size >= this.maxEntries) return false;
      d = { name, port: event.port, protocols: new Set(), count: 0, bytesUp: 0, bytesDown: 0, rate: new RateCounter(), first: ms, last: ms, tools: new Set(), routes: new Map() };
      this.destinations.set(key, d);
    }
    stretch(d, ms);
    if (event.phase === "close") {
      // Bytes arrive with the close; the attempt is counted (and attributed) at its decide
      // event only, so the fold does not depend on arrival order. A close whose decide was
      // never seen (the stream began mid-connection) leaves an entry with count 0.
      d.bytesUp += safeCount(event.bytesUp);
      d.bytesDown += safeCount(event.bytesDown);
      return true;
    }
    d.count += 1;
    d.rate.hit(ms);
    if (isProtocol(event.protocol)) d.protocols.add(event.protocol);
    const shape = shapeFromEvent(event);
    if (shape !== undefined) this.recordRequest(d, shape, tools, ms, event.credentials);
    for (const tool of tools) {
      d.tools.add(tool);
      const state = this.tool(tool, ms);
      // With several calls in flight the connection may be any one's: keep it apart.
      if (tools.length === 1) state?.destinations.add(key);
      else state?.shared.add(key);
    }
    return true;
  }

  /** Folds one request's shape into its route: names accumulate, values were never there. */
  private recordRequest(d: DestinationState, shape: RequestShape, tools: readonly string[], ms: number, credentials: readonly string[] | undefined): void {
    const key = routeKey(shape);
    let r = d.routes.get(key);
    if (r === undefined) {
      if (d.routes.size >= this.maxEntries) return;
      r = { method: shape.method, path: shape.path, queryKeys: new Set(), bodyFields: new Set(), headerNames: new Set(), bodies: new Set(), credentials: new Set(), count: 0, first: ms, last: ms, tools: new Set() };
      d.routes.set(key, r);
    }
    stretch(r, ms);
    r.count += 1;
    r.bodies.add(shape.body);
    addBounded(r.queryKeys, shape.queryKeys);
    addBounded(r.bodyFields, shape.bodyFields);
    addBounded(r.headerNames, shape.headerNames);
    // Shape names only (`aws-access-key`), never the value that matched.
    if (credentials !== undefined) addBounded(r.credentials, credentials);
    for (const tool of tools) r.tools.add(tool);
  }

  private recordDns(event: AttributedEgressEvent, tools: readonly string[], ms: number): boolean {
    const name = event.name === undefined ? undefined : normaliseHostName(event.name);
    const type = (event.recordType ?? "A").toUpperCase();
    if (name === undefined || !/^[A-Z][A-Z0-9]{0,9}$/.test(type)) return false;
    const key = `${name} ${type}`;
    let d = this.dns.get(key);
    if (d === undefined) {
      if (this.dns.size >= this.maxEntries) return false;
      d = { name, type, count: 0, first: ms, last: ms, tools: new Set() };
      this.dns.set(key, d);
    }
    stretch(d, ms);
    d.count += 1;
    for (const tool of tools) {
      d.tools.add(tool);
      this.tool(tool, ms);
    }
    return true;
  }

  private recordTunnelling(event: AttributedEgressEvent, signals: readonly TunnellingSignal[], tools: readonly string[], ms: number): boolean {
    // Tunnelling names are many and one-off by design: summarise them per rule, not per name.
    const name = event.name === undefined ? undefined : (normaliseHostName(event.name) ?? event.name.slice(0, 300));
    const rule = (event.rule ?? name)?.slice(0, 300);
    if (rule === undefined || name === undefined) return false;
    let t = this.tunnels.get(rule);
    if (t === undefined) {
      if (this.tunnels.size >= this.maxEntries) return false;
      t = { signals: new Set(), count: 0, names: new Set(), first: ms, last: ms, tools: new Set() };
      this.tunnels.set(rule, t);
    }
    stretch(t, ms);
    t.count += 1;
    for (const s of signals) t.signals.add(s);
    if (t.names.size < this.maxEntries) t.names.add(name);
    for (const tool of tools) {
      t.tools.add(tool);
      this.tool(tool, ms);
    }
    return true;
  }

  private tool(name: string, ms: number): ToolState | undefined {
    let t = this.tools.get(name);
    if (t === undefined) {
      if (this.tools.size >= this.maxEntries) return undefined;
      t = { calls: 0, rate: new RateCounter(), destinations: new Set(), shared: new Set(), first: ms, last: ms };
      this.tools.set(name, t);
    }
    stretch(t, ms);
    return t;
  }

  private touch(ms: number): void {
    this.first = this.first === undefined ? ms : Math.min(this.first, ms);
    this.last = this.last === undefined ? ms : Math.max(this.last, ms);
    this.window = { firstMinute: minuteOf(this.first), lastMinute: minuteOf(this.last) };
  }

  private ignore(): false {
    this.ignoredCount += 1;
    return false;
  }
}

function stretch(s: Seen, ms: number): void {
  s.first = Math.min(s.first, ms);
  s.last = Math.max(s.last, ms);
}

function addBounded(into: Set<string>, names: readonly string[]): void {
  for (const n of names) if (into.size < MAX_ROUTE_NAMES) into.add(n);
}

function safeCount(n: number | undefined): number {
  return n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** The name the sidecar judged (SNI, Host or CONNECT authority), else the IP literal dialled. */
function destinationName(event: AttributedEgressEvent): string | undefined {
  if (event.name !== undefined) {
    const name = normaliseHostName(event.name);
    if (name !== undefined) return name;
    const literal = parseIp(event.name);
    if (literal !== undefined) return literal.text;
    return undefined;
  }
  return event.ip === undefined ? undefined : parseIp(event.ip)?.text;
}

/** Folds a whole stream at once. */
export function recordBaseline(options: RecorderOptions, observations: Iterable<Observation>): Baseline {
  const recorder = new BaselineRecorder(options);
  for (const o of observations) recorder.observe(o);
  return recorder.snapshot();
}
