import * as z from "zod";
import { hostPatternMatches, parseHostPattern } from "../names.js";
import { parseIpRange } from "../ip.js";
import { parseArgumentPath } from "../gateway/argument-rules.js";

/**
 * Policy file format, version 1. Every object is strict: an unknown key is an error,
 * because a misspelt `egres:` must never silently mean "no egress rules".
 * Messages quote the offending value so a formatted issue reads on its own.
 */

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

const port = z
  .number({ error: (iss) => `${show(iss.input)} is not a port number` })
  .int({ error: (iss) => `${show(iss.input)} is not a valid port (an integer 1-65535)` })
  .min(1, { error: (iss) => `${show(iss.input)} is not a valid port (1-65535)` })
  .max(65535, { error: (iss) => `${show(iss.input)} is not a valid port (1-65535)` });

const hostPattern = z.string().refine((s) => parseHostPattern(s) !== undefined, {
  error: (iss) =>
    String(iss.input).includes("*")
      ? `${show(iss.input)} is not a valid host: "*" is allowed only as the whole leftmost label, as in "*.example.com"`
      : `${show(iss.input)} is not a valid host name`,
});

const cidr = z.string().refine((s) => parseIpRange(s) !== undefined, {
  error: (iss) => `${show(iss.input)} is not a valid CIDR`,
});

const glob = z.string().min(1).max(200);

export const RECORD_TYPES = ["A", "TXT", "HTTPS", "SVCB"] as const;
export const MODES = ["enforcing", "observing"] as const;

/** Ports whose traffic is TLS by convention: requests there are invisible unless the rule inspects. */
export const TLS_PORTS: ReadonlySet<number> = new Set([443, 8443]);

const httpRoute = z.strictObject({
  method: z
    .string()
    .regex(/^([A-Z]{1,20}|\*)$/, { error: (iss) => `${show(iss.input)} is not an HTTP method (upper case, like "POST"), or "*" for any` }),
  path: z
    .string()
    .max(500)
    .regex(/^\/[\x21-\x7e]*$/, { error: (iss) => `${show(iss.input)} is not a path glob: it starts with "/" and has no spaces ("*" is one segment, "**" any number)` })
    .refine((p) => !p.includes("?") && !p.includes("#"), { error: (iss) => `${show(iss.input)}: a path glob matches the path alone; leave out the query and fragment` }),
});

const allowEntry = z
  .strictObject({
    host: hostPattern.optional(),
    cidr: cidr.optional(),
    ports: z.array(port).min(1, { error: "ports must list at least one port" }).default([443]),
    /** The sidecar terminates TLS on this destination (with the sandbox CA) and sees every request. */
    inspect: z.boolean().optional(),
    /** Only these requests (method and path glob); enforced wherever the sidecar sees requests. */
    http: z.array(httpRoute).min(1, { error: "http must list at least one route (leave it out to allow every request)" }).optional(),
  })
  .superRefine((entry, ctx) => {
    if (entry.host !== undefined && entry.cidr !== undefined) {
      ctx.addIssue({ code: "custom", message: 'an allow entry takes either "host" or "cidr", not both' });
    } else if (entry.host === undefined && entry.cidr === undefined) {
      ctx.addIssue({ code: "custom", message: 'an allow entry needs "host" or "cidr"' });
    }
    if (entry.cidr !== undefined && (entry.inspect === true || entry.http !== undefined)) {
      ctx.addIssue({ code: "custom", path: [entry.inspect === true ? "inspect" : "http"], message: '"inspect" and "http" need a "host" rule: TLS is terminated for a name' });
    }
    const tlsPorts = entry.ports.filter((p) => TLS_PORTS.has(p));
    if (entry.http !== undefined && entry.inspect !== true && tlsPorts.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["http"],
        message: `http rules can never see requests on TLS port ${tlsPorts.join(", ")} unless the rule says "inspect: true"`,
      });
    }
  });

const semverExact = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

const npmSource = z.strictObject({
  package: z.string().regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, {
    error: (iss) => `${show(iss.input)} is not a valid npm package name`,
  }),
  version: z.string().regex(semverExact, {
    error: (iss) => `${show(iss.input)} is not an exact version (ranges and tags are not allowed; pin e.g. "1.2.3")`,
  }),
  integrity: z
    .string()
    .regex(/^sha(256|384|512)-[A-Za-z0-9+/]+=*$/, { error: (iss) => `${show(iss.input)} is not an SRI integrity string` })
    .optional(),
});

const imageSource = z.strictObject({
  ref: z.string().min(1),
  digest: z
    .string()
    .regex(/^sha256:[a-f0-9]{64}$/, { error: (iss) => `${show(iss.input)} is not a sha256 digest` })
    .optional(),
});

const buildSource = z.strictObject({
  context: z.string().min(1),
  dockerfile: z.string().min(1).default("Dockerfile"),
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  error: (iss) => `${show(iss.input)} is not a valid environment variable name`,
});

/**
 * `inject`: the server holds a sentinel, never the value; the sidecar writes the value into
 * `header` (as `format`, "{}" standing for the value) on inspected requests to `host` alone.
 */
const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Headers the sidecar owns or drops on the way: a value there would never arrive, or would reframe the request.
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]);
const secretInject = z.strictObject({
  host: z.string().refine((s) => parseHostPattern(s)?.kind === "exact", {
    error: (iss) => `${show(iss.input)} is not a host name (one exact name; no "*": a credential goes to one host)`,
  }),
  header: z
    .string()
    .regex(HEADER_TOKEN, { error: (iss) => `${show(iss.input)} is not an HTTP header name` })
    .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), { error: (iss) => `${show(iss.input)} is a header the sidecar sets or drops itself; name the header the API reads the credential from` }),
  format: z
    .string()
    .max(200)
    .refine((f) => f.split("{}").length === 2 && !/[\r\n\0]/.test(f), { error: (iss) => `${show(iss.input)} is not a header format: it holds "{}" (the value) exactly once and no line breaks` })
    .optional(),
});

const secretEntry = z.union([
  envName,
  z.strictObject({
    name: envName,
    /** Only the sidecar holds the value; the server gets a per-run sentinel in its place. */
    inject: secretInject.optional(),
    /** A plain secret's own host: the value (which the server holds) may go there and nowhere else. */
    host: z.string().refine((s) => parseHostPattern(s)?.kind === "exact", { error: (iss) => `${show(iss.input)} is not a host name (one exact name)` }).optional(),
  }),
]);

/** One `server.secrets` entry, in its object form whatever way it was written. */
export interface SecretRule {
  readonly name: string;
  readonly inject?: { readonly host: string; readonly header: string; readonly format?: string };
  readonly host?: string;
}

const mount = z.strictObject({
  source: z.string().min(1),
  target: z.string().regex(/^\/[^\0]*$/, { error: (iss) => `${show(iss.input)} is not an absolute container path` }),
  readOnly: z.boolean().default(true),
});

const resources = z.strictObject({
  memory: z
    .string()
    .regex(/^\d+(\.\d+)?[bkmg]?$/i, { error: (iss) => `${show(iss.input)} is not a memory size like "256m"` })
    .default("256m"),
  cpus: z.number().positive().max(64).default(0.5),
  pids: z.number().int().min(8).max(32768).default(128),
});

/** `runc`: namespaces and dropped capabilities. `gvisor`: also gVisor's user-space kernel (runsc) between the server and the host's. */
export const ISOLATIONS = ["runc", "gvisor"] as const;
export type Isolation = (typeof ISOLATIONS)[number];
const isolation = z.enum(ISOLATIONS, { error: (iss) => `${show(iss.input)} is not an isolation; expected "runc" or "gvisor"` });

const server = z
  .strictObject({
    npm: npmSource.optional(),
    image: imageSource.optional(),
    build: buildSource.optional(),
    command: z.array(z.string()).min(1).optional(),
    args: z.array(z.string()).default([]),
    env: z.record(envName, z.string()).default({}),
    secrets: z.array(secretEntry).default([]),
    mounts: z.array(mount).default([]),
    resources: resources.default({ memory: "256m", cpus: 0.5, pids: 128 }),
    /** The kernel wall around this server; overrides hangar.yaml's runtime.isolation. */
    isolation: isolation.optional(),
  })
  .superRefine((s, ctx) => {
    const sources = [s.npm, s.image, s.build].filter((x) => x !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({ code: "custom", message: 'a server needs exactly one of "npm", "image" or "build"' });
    }
    const seen = new Set<string>();
    s.secrets.forEach((entry, i) => {
      const name = typeof entry === "string" ? entry : entry.name;
      if (name in s.env) ctx.addIssue({ code: "custom", path: ["secrets", i], message: `${show(name)} is both a secret and a plain env value` });
      if (seen.has(name)) ctx.addIssue({ code: "custom", path: ["secrets", i], message: `${show(name)} is listed twice` });
      seen.add(name);
      if (typeof entry !== "string" && entry.inject !== undefined && entry.host !== undefined) {
        ctx.addIssue({ code: "custom", path: ["secrets", i, "host"], message: `${show(name)}: "host" is for a plain secret; an injected one belongs to inject.host` });
      }
    });
  })
  // Consumers see the names (`secrets`), as before, and the object forms (`secretRules`) when any.
  .transform((s): Omit<typeof s, "secrets"> & { secrets: string[]; secretRules?: SecretRule[] } => {
    const rules = s.secrets.map((e): SecretRule => (typeof e === "string" ? { name: e } : e));
    const { secrets: _entries, ...rest } = s;
    return { ...rest, secrets: rules.map((r) => r.name), ...(rules.some((r) => r.inject !== undefined || r.host !== undefined) ? { secretRules: rules } : {}) };
  });

const capture = z.union([
  z.boolean(),
  z.strictObject({ ports: z.array(port).min(1).default([80, 443]) }),
]);

const egress = z.strictObject({
  mode: z
    .enum(MODES, { error: (iss) => `${show(iss.input)} is not a mode; expected "enforcing" or "observing"` })
    .default("enforcing"),
  allow: z.array(allowEntry).default([]),
  dns: z
    .strictObject({
      recordTypes: z
        .array(
          z.enum(RECORD_TYPES, {
            error: (iss) => `${show(iss.input)} is not an answerable record type; expected one of A, TXT, HTTPS, SVCB (AAAA is never answered)`,
          }),
        )
        .default(["A"]),
    })
    .default({ recordTypes: ["A"] }),
  capture: capture.default(false),
});

export const RESULT_POLICIES = ["flag", "strict", "off"] as const;

/** What a tool does with data, for the flow rules of hangar.yaml (composition over one session). */
export const TOOL_LABELS = ["reads-private", "reads-untrusted", "writes-public", "sends-external", "executes"] as const;
export type ToolLabel = (typeof TOOL_LABELS)[number];
export const toolLabel = z.enum(TOOL_LABELS, { error: (iss) => `${show(iss.input)} is not a tool label; expected one of ${TOOL_LABELS.join(", ")}` });

const argumentCheck = z
  .strictObject({
    /** Value globs ("*" any run of characters): the value matches one. */
    match: z.array(z.string().min(1).max(500)).min(1).optional(),
    /** Absolute folders: the value is a path inside one, once "." and ".." are resolved. */
    under: z.array(z.string().regex(/^\/[^\0]*$/, { error: (iss) => `${show(iss.input)} is not an absolute path` })).min(1).optional(),
    /** The value is a URL whose host this policy's egress declares ("declared"), or matches one of these host patterns. */
    host: z.union([z.literal("declared"), z.array(hostPattern).min(1)], { error: (iss) => `${show(iss.input)} is not "declared" or a list of host patterns` }).optional(),
  })
  .refine((c) => c.match !== undefined || c.under !== undefined || c.host !== undefined, { error: 'a check needs "match", "under" or "host"' });

const argumentRule = z
  .strictObject({
    /** Glob over the server's own tool names. */
    tool: glob.default("*"),
    /** JSON path into the arguments: "path", "files[*].path", "**.url" ("*" one level, "**" any). */
    path: z
      .string()
      .min(1)
      .max(300)
      .superRefine((p, ctx) => {
        const parsed = parseArgumentPath(p);
        if (!parsed.ok) ctx.addIssue({ code: "custom", message: `${show(p)}: ${parsed.message}` });
      }),
    /** Every value at the path must pass every check listed. */
    allow: argumentCheck.optional(),
    /** No value at the path may pass every check listed. */
    deny: argumentCheck.optional(),
  })
  .refine((r) => r.allow !== undefined || r.deny !== undefined, { error: 'an arguments rule needs "allow" or "deny"' });

const tools = z.strictObject({
  allow: z.array(glob).optional(),
  deny: z.array(glob).default([]),
  /** Tool-name glob (the server's own names) → labels; a tool carries the labels of every glob it matches. */
  labels: z.record(glob, z.array(toolLabel).min(1, { error: "a tool's labels must list at least one label (leave the tool out instead)" })).optional(),
  /** What values tool arguments may carry (see core/gateway/argument-rules.ts); refused in ENFORCING, recorded in OBSERVING. */
  arguments: z.array(argumentRule).optional(),
  /**
   * Tool results are scanned for injection cues: "flag" (the default) records them in the audit,
   * "strict" also refuses such a result (ENFORCING; would-block when OBSERVING), "off" skips the scan.
   */
  results: z.enum(RESULT_POLICIES, { error: (iss) => `${show(iss.input)} is not a results policy; expected "flag", "strict" or "off"` }).optional(),
  rateLimit: z.strictObject({ perMinute: z.number().int().positive() }).optional(),
});

const baseline = z.strictObject({
  file: z.string().min(1).optional(),
  rateTolerance: z.number().positive().default(3),
});

export const PolicySchema = z.strictObject({
  version: z.literal(1, { error: (iss) => `${show(iss.input)} is not a supported policy version; expected 1` }),
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: (iss) => `${show(iss.input)} is not a valid name (lowercase letters, digits and "-", at most 63)`,
  }),
  description: z.string().max(500).optional(),
  server,
  egress: egress.default({ mode: "enforcing", allow: [], dns: { recordTypes: ["A"] }, capture: false }),
  tools: tools.default({ deny: [] }),
  baseline: baseline.default({ rateTolerance: 3 }),
}).superRefine((p, ctx) => {
  p.server.secretRules?.forEach((rule, i) => {
    if (rule.inject === undefined) return;
    if (inspectedFor(p.egress.allow, rule.inject.host)) return;
    ctx.addIssue({
      code: "custom",
      path: ["server", "secrets", i, "inject", "host"],
      message: `${show(rule.inject.host)}: ${rule.name} can be injected only where the sidecar sees requests; add an egress.allow rule for this host with "inspect: true"`,
    });
  });
});

/** Whether the rule that decides `host` (an exact rule before the longest wildcard, as compilePolicy merges them) inspects. */
function inspectedFor(allow: readonly { readonly host?: string | undefined; readonly inspect?: boolean | undefined }[], host: string): boolean {
  const name = parseHostPattern(host);
  if (name?.kind !== "exact") return false;
  const rules = allow.flatMap((e) => {
    const pattern = e.host === undefined ? undefined : parseHostPattern(e.host);
    return pattern === undefined ? [] : [{ pattern, inspect: e.inspect === true }];
  });
  const exact = rules.filter((r) => r.pattern.kind === "exact" && r.pattern.name === name.name);
  if (exact.length > 0) return exact.some((r) => r.inspect);
  const wild = rules.filter((r) => r.pattern.kind === "wildcard" && hostPatternMatches(r.pattern, name.name));
  const longest = Math.max(-1, ...wild.map((r) => (r.pattern.kind === "wildcard" ? r.pattern.suffix.length : 0)));
  return wild.some((r) => r.pattern.kind === "wildcard" && r.pattern.suffix.length === longest && r.inspect);
}

export type Policy = z.output<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type Mode = (typeof MODES)[number];
export type AnswerableRecordType = (typeof RECORD_TYPES)[number];

export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PolicySchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://hangar.dev/schemas/policy-v1.json",
    title: "Hangar policy file, version 1",
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$schema")),
  };
}
