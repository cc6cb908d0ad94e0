import * as z from "zod";
import { DEFAULT_AUDIT_DB } from "../../audit/audit-paths.js";
import { MODES, toolLabel } from "../../core/policy/policy-schema.js";
import { RuntimeConfigSchema } from "../../runtime/runtime-config.js";
import { DEFAULT_SUPERVISOR_SETTINGS as D } from "../supervisor-settings.js";

/**
 * hangar.yaml as the gateway reads it: the runtime engineer's schema (version, runtime)
 * extended, never redefined, with the gateway's keys. Strict like every Hangar file: a
 * misspelt key is an error, never a silent default. Paths are relative to hangar.yaml.
 */
const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

export const IDENTITY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
const identity = z.string().regex(IDENTITY_PATTERN, { error: (iss) => `${show(iss.input)} is not a valid identity (letters, digits and . _ @ + -, at most 128)` });
const roleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: (iss) => `${show(iss.input)} is not a valid role name (letters, digits and . _ -, at most 64)` });
const glob = z.string().min(1, { error: "a glob cannot be empty" }).max(300);
const path = z.string().min(1, { error: "a path cannot be empty" });
const ms = (max: number) => z.number().int({ error: (iss) => `${show(iss.input)} is not a whole number of milliseconds` }).min(0).max(max);

const role = z.strictObject({
  allow: z.array(glob).default([]),
  deny: z.array(glob).default([]),
});

export const RbacSchema = z.strictObject({
  /** role name → allow/deny globs over <server>__<tool>. */
  roles: z.record(roleName, role).default({}),
  /** identity (or "*" for everyone) → role names. */
  bindings: z.record(z.union([identity, z.literal("*")]), z.array(roleName)).default({}),
});

const gatewayDefaults = {
  startTimeoutMs: D.startTimeoutMs,
  callTimeoutMs: D.callTimeoutMs,
  healthIntervalMs: D.healthIntervalMs,
  pingTimeoutMs: D.pingTimeoutMs,
  idleTimeoutMs: D.idleTimeoutMs,
  breaker: { ...D.breaker },
  restart: { ...D.restart },
  manifests: ".hangar/manifests",
  status: ".hangar/status.json",
  tokens: ".hangar/tokens.json",
  stateDir: ".hangar/run",
  metrics: { public: false },
};

const gateway = z.strictObject({
  startTimeoutMs: ms(600_000).min(100).default(gatewayDefaults.startTimeoutMs),
  callTimeoutMs: ms(3_600_000).min(100).default(gatewayDefaults.callTimeoutMs),
  /** 0 disables health checks. */
  healthIntervalMs: ms(3_600_000).default(gatewayDefaults.healthIntervalMs),
  pingTimeoutMs: ms(600_000).min(10).default(gatewayDefaults.pingTimeoutMs),
  /** 0 keeps servers running however long they are idle. */
  idleTimeoutMs: ms(86_400_000).default(gatewayDefaults.idleTimeoutMs),
  breaker: z
    .strictObject({
      failureThreshold: z.number().int().min(1).max(1000).default(D.breaker.failureThreshold),
      coolDownMs: ms(3_600_000).default(D.breaker.coolDownMs),
    })
    .default(gatewayDefaults.breaker),
  restart: z
    .strictObject({
      initialDelayMs: ms(600_000).default(D.restart.initialDelayMs),
      maxDelayMs: ms(3_600_000).default(D.restart.maxDelayMs),
      maxAttempts: z.number().int().min(0).max(1000).default(D.restart.maxAttempts),
    })
    .default(gatewayDefaults.restart),
  manifests: path.default(gatewayDefaults.manifests),
  status: path.default(gatewayDefaults.status),
  tokens: path.default(gatewayDefaults.tokens),
  stateDir: path.default(gatewayDefaults.stateDir),
  metrics: z
    .strictObject({
      /** Serve /metrics without a bearer token, for a scraper on a trusted network. */
      public: z.boolean({ error: (iss) => `${show(iss.input)} is not true or false` }).default(gatewayDefaults.metrics.public),
    })
    .default(gatewayDefaults.metrics),
});

const flowLabels = (what: string) => z.array(toolLabel).min(1, { error: `${what} must list at least one tool label` });

/** A composition the gateway refuses within one client session (see core/gateway/flow-tracker.ts). */
const flow = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: (iss) => `${show(iss.input)} is not a valid flow name (lowercase letters, digits and "-", at most 63)` }),
  description: z.string().max(500).optional(),
  /** Default: the mode of the called tool's server (its policy's egress.mode). */
  mode: z.enum(MODES, { error: (iss) => `${show(iss.input)} is not a mode; expected "enforcing" or "observing"` }).optional(),
  /** Refuse a call carrying ANY label of `call` once the session's earlier calls carried EVERY label of `after`. */
  deny: z.strictObject({ after: flowLabels("deny.after"), call: flowLabels("deny.call") }),
});

// Unique names are checked in load-hangar-config.ts, on the raw list, so that they are reported with every other issue.
const flows = z.array(flow);

export const HangarConfigSchema = z.strictObject({
  ...RuntimeConfigSchema.shape,
  /** Policy files, one per server, relative to hangar.yaml. */
  servers: z.array(path, { error: "servers must be a list of policy files" }).min(1, { error: "servers must list at least one policy file" }),
  /** The identity of the stdio endpoint. */
  identity: identity.default("local-user"),
  audit: z.strictObject({ path: path.default(DEFAULT_AUDIT_DB) }).default({ path: DEFAULT_AUDIT_DB }),
  /** Absent: no RBAC, every identity may call everything (the gateway warns). */
  rbac: RbacSchema.optional(),
  gateway: gateway.default(gatewayDefaults),
  /** Compositions of tool calls refused within one client session, by the tools' labels (policy tools.labels). */
  flows: flows.default([]),
  approvals: z
    .strictObject({
      /** Refuse a grant by the identity that requested the approval (four eyes). */
      requireDistinctGranter: z.boolean({ error: (iss) => `${show(iss.input)} is not true or false` }).default(false),
    })
    .default({ requireDistinctGranter: false }),
});

export type HangarConfigData = z.output<typeof HangarConfigSchema>;

export function hangarConfigJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(HangarConfigSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
