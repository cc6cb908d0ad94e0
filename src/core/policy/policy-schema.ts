import { z } from "zod";
import { parseHostPattern } from "../names.js";
import { parseIpRange } from "../ip.js";

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

const server = z
  .strictObject({
    npm: npmSource.optional(),
    image: imageSource.optional(),
    build: buildSource.optional(),
    command: z.array(z.string()).min(1).optional(),
    args: z.array(z.string()).default([]),
    env: z.record(envName, z.string()).default({}),
    secrets: z.array(envName).default([]),
    mounts: z.array(mount).default([]),
    resources: resources.default({ memory: "256m", cpus: 0.5, pids: 128 }),
  })
  .superRefine((s, ctx) => {
    const sources = [s.npm, s.image, s.build].filter((x) => x !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({ code: "custom", message: 'a server needs exactly one of "npm", "image" or "build"' });
    }
    for (const name of s.secrets) {
      if (name in s.env) ctx.addIssue({ code: "custom", path: ["secrets"], message: `${show(name)} is both a secret and a plain env value` });
    }
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

const tools = z.strictObject({
  allow: z.array(glob).optional(),
  deny: z.array(glob).default([]),
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
});

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
