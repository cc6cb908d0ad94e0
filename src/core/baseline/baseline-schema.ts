import * as z from "zod";
import { parseIp } from "../ip.js";
import { normaliseHostName } from "../names.js";
import { BODY_KINDS } from "../request-shape.js";

/**
 * Baseline file format: what one server was seen doing while it was learned.
 * Strict like policies, because a baseline is reviewed and sometimes hand-edited in git.
 * Key order and array order on disk come from `canonicalBaseline`, not from here.
 * Version 2 adds request shapes (`destinations[].requests`); a baseline without any is
 * written as version 1, so older Hangar still reads it and old files stay byte-identical.
 */
export const BASELINE_VERSION = 2 as const;
export const BASELINE_VERSIONS = [1, 2] as const;
export type BaselineVersion = (typeof BASELINE_VERSIONS)[number];

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

/** Destination names are stored as the sidecar compares them: normalised host names or IP literals. */
export function isCanonicalDestination(name: string): boolean {
  return normaliseHostName(name) === name || parseIp(name)?.text === name;
}

export function isCanonicalTimestamp(ts: string): boolean {
  const ms = Date.parse(ts);
  return Number.isFinite(ms) && new Date(ms).toISOString() === ts;
}

const timestamp = z.string().refine(isCanonicalTimestamp, {
  error: (iss) => `${show(iss.input)} is not a UTC timestamp like "2025-01-31T12:00:00.000Z"`,
});

const count = z
  .number({ error: (iss) => `${show(iss.input)} is not a count` })
  .int({ error: (iss) => `${show(iss.input)} is not a whole number` })
  .min(0, { error: (iss) => `${show(iss.input)} is negative` });

const rate = z.number({ error: (iss) => `${show(iss.input)} is not a rate` }).min(0, { error: (iss) => `${show(iss.input)} is negative` });

const port = z
  .number({ error: (iss) => `${show(iss.input)} is not a port number` })
  .int({ error: (iss) => `${show(iss.input)} is not a valid port (an integer 1-65535)` })
  .min(1, { error: (iss) => `${show(iss.input)} is not a valid port (1-65535)` })
  .max(65535, { error: (iss) => `${show(iss.input)} is not a valid port (1-65535)` });

const hostName = z.string().refine((s) => normaliseHostName(s) === s, {
  error: (iss) => `${show(iss.input)} is not a normalised host name (lowercase, punycode, no trailing dot)`,
});

const destinationName = z.string().refine(isCanonicalDestination, {
  error: (iss) => `${show(iss.input)} is not a normalised host name or IP address`,
});

const toolName = z.string().min(1, { error: "a tool name cannot be empty" }).max(200);
const toolList = z.array(toolName);

export const CONNECTION_PROTOCOLS = ["connect", "http", "tcp", "tls"] as const;
export const TUNNELLING_SIGNALS = ["tunnel-entropy", "tunnel-long-label", "tunnel-unique-rate", "tunnel-bits", "tunnel-bits-rate", "tunnel-budget"] as const;

/** A destination key, as the decision's `BaselineView` spells it: `name:port`. */
export const destinationKey = (d: { readonly name: string; readonly port: number }): string => `${d.name}:${d.port}`;

const destinationRef = z.string().refine(
  (s) => {
    const at = s.lastIndexOf(":");
    const p = Number(s.slice(at + 1));
    return at > 0 && Number.isInteger(p) && p >= 1 && p <= 65535 && String(p) === s.slice(at + 1) && isCanonicalDestination(s.slice(0, at));
  },
  { error: (iss) => `${show(iss.input)} is not a destination like "api.example.com:443"` },
);

const nameList = z.array(z.string().min(1, { error: "a name cannot be empty" }).max(4096));

/** One HTTP route seen on a destination, with every name (never a value) its requests used. */
export const RequestEntrySchema = z.strictObject({
  method: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/, { error: (iss) => `${show(iss.input)} is not an HTTP method` }),
  path: z
    .string()
    .max(2048)
    .regex(/^(\/[\x21-\x7e]*|\*)$/, { error: (iss) => `${show(iss.input)} is not a path template like "/repos/{n}/issues"` }),
  queryKeys: nameList,
  bodyFields: nameList,
  headerNames: nameList,
  /** Kinds of body seen on the route; `body-not-inspected` drift needs to know if any was parsed. */
  bodies: z.array(z.enum(BODY_KINDS, { error: (iss) => `${show(iss.input)} is not a body kind; expected one of ${BODY_KINDS.join(", ")}` })).min(1),
  /** Credential shapes (`aws-access-key`) the route's requests carried while learning: there, `credential-pattern` is expected. Absent when none. */
  credentials: nameList.optional(),
  count,
  firstSeen: timestamp,
  lastSeen: timestamp,
  tools: toolList,
});

/** A route's key within its destination: `POST /email`. */
export const routeKey = (r: { readonly method: string; readonly path: string }): string => `${r.method} ${r.path}`;

export const DestinationSchema = z.strictObject({
  name: destinationName,
  port,
  protocols: z.array(z.enum(CONNECTION_PROTOCOLS, { error: (iss) => `${show(iss.input)} is not a protocol; expected one of ${CONNECTION_PROTOCOLS.join(", ")}` })),
  count,
  firstSeen: timestamp,
  lastSeen: timestamp,
  bytesUp: count,
  bytesDown: count,
  perMinute: z.strictObject({ max: count, p95: count }),
  tools: toolList,
  /** HTTP requests seen (plain HTTP, or TLS the sidecar inspects); absent when none were. */
  requests: z.array(RequestEntrySchema).optional(),
});

export const DnsEntrySchema = z.strictObject({
  name: hostName,
  type: z.string().regex(/^[A-Z][A-Z0-9]{0,9}$/, { error: (iss) => `${show(iss.input)} is not a DNS record type like "A" or "TXT"` }),
  count,
  firstSeen: timestamp,
  lastSeen: timestamp,
  tools: toolList,
});

export const ToolEntrySchema = z.strictObject({
  name: toolName,
  calls: count,
  firstSeen: timestamp,
  lastSeen: timestamp,
  perMinute: z.strictObject({ mean: rate, p95: count, max: count }),
  /** Reached while this was the only tool call in flight. */
  destinations: z.array(destinationRef),
  /** Reached only while other tool calls were in flight too, so possibly theirs. */
  sharedDestinations: z.array(destinationRef),
});

export const TunnellingEntrySchema = z.strictObject({
  rule: z.string().min(1).max(300),
  signals: z.array(z.enum(TUNNELLING_SIGNALS, { error: (iss) => `${show(iss.input)} is not a tunnelling signal; expected one of ${TUNNELLING_SIGNALS.join(", ")}` })).min(1),
  count,
  names: count,
  examples: z.array(z.string().max(300)).max(5),
  firstSeen: timestamp,
  lastSeen: timestamp,
  tools: toolList,
});

function reportDuplicates<T>(ctx: z.RefinementCtx, key: string, items: readonly T[], id: (x: T) => string, what: string, under: readonly (string | number)[] = []): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = id(item);
    const first = seen.get(k);
    if (first !== undefined) ctx.addIssue({ code: "custom", path: [...under, key, i], message: `duplicate ${what} ${k} (also at ${key}[${first}])` });
    else seen.set(k, i);
  });
}

export const BaselineSchema = z
  .strictObject({
    version: z.union([z.literal(1), z.literal(2)], { error: (iss) => `${show(iss.input)} is not a supported baseline version; expected 1 or 2` }),
    server: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: (iss) => `${show(iss.input)} is not a valid server name` }),
    status: z.enum(["learning", "frozen"], { error: (iss) => `${show(iss.input)} is not a status; expected "learning" or "frozen"` }),
    frozenAt: timestamp.optional(),
    rateTolerance: z.number().positive({ error: (iss) => `${show(iss.input)} is not a positive number` }),
    observed: z.strictObject({ from: timestamp.optional(), to: timestamp.optional(), minutes: count, events: count, toolCalls: count }),
    destinations: z.array(DestinationSchema),
    dns: z.array(DnsEntrySchema),
    tools: z.array(ToolEntrySchema),
    tunnelling: z.array(TunnellingEntrySchema),
  })
  .superRefine((b, ctx) => {
    if (b.status === "frozen" && b.frozenAt === undefined) ctx.addIssue({ code: "custom", path: ["status"], message: 'a frozen baseline needs "frozenAt"' });
    if (b.status === "learning" && b.frozenAt !== undefined) ctx.addIssue({ code: "custom", path: ["frozenAt"], message: 'a learning baseline has no "frozenAt"; set status to "frozen" or remove it' });
    reportDuplicates(ctx, "destinations", b.destinations, destinationKey, "destination");
    b.destinations.forEach((d, i) => {
      if (d.requests === undefined) return;
      if (b.version < 2 && d.requests.length > 0) ctx.addIssue({ code: "custom", path: ["destinations", i, "requests"], message: 'request shapes need "version": 2' });
      reportDuplicates(ctx, "requests", d.requests, routeKey, "route", ["destinations", i]);
    });
    reportDuplicates(ctx, "dns", b.dns, (d) => `${d.name} ${d.type}`, "DNS entry");
    reportDuplicates(ctx, "tools", b.tools, (t) => t.name, "tool");
    reportDuplicates(ctx, "tunnelling", b.tunnelling, (t) => t.rule, "tunnelling entry");
  });

export type Baseline = z.output<typeof BaselineSchema>;
export type BaselineDestination = z.output<typeof DestinationSchema>;
export type BaselineRequest = z.output<typeof RequestEntrySchema>;
export type BaselineDnsEntry = z.output<typeof DnsEntrySchema>;
export type BaselineTool = z.output<typeof ToolEntrySchema>;
export type BaselineTunnelling = z.output<typeof TunnellingEntrySchema>;
export type ConnectionProtocol = (typeof CONNECTION_PROTOCOLS)[number];
export type TunnellingSignal = (typeof TUNNELLING_SIGNALS)[number];

/** The lifecycle as a type: only a frozen baseline may be compared against. */
export type FrozenBaseline = Baseline & { readonly status: "frozen"; readonly frozenAt: string };

export function asFrozen(b: Baseline): FrozenBaseline | undefined {
  return b.status === "frozen" && b.frozenAt !== undefined ? (b as FrozenBaseline) : undefined;
}

export function baselineJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(BaselineSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
