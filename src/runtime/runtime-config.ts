import * as z from "zod";
import { parseIpRange } from "../core/ip.js";
import { ISOLATIONS } from "../core/policy/policy-schema.js";
import { DEFAULT_BASE_IMAGE, DEFAULT_SIDECAR_IMAGE } from "../images/build-progress.js";
import { parseMemory } from "./resource-limits.js";

/**
 * hangar.yaml, the operator's runtime settings (the policy says what a server may do;
 * this says how the machine runs sandboxes). Strict like policies: a misspelt key is an
 * error, never a silent default.
 */
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

const cidr4 = z.string().refine((s) => parseIpRange(s)?.version === 4, {
  error: (iss) => `${show(iss.input)} is not an IPv4 CIDR`,
});

const networkName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, {
  error: (iss) => `${show(iss.input)} is not a valid Docker network name`,
});

const memory = z.string().refine((s) => (parseMemory(s) ?? 0) >= 6 * 1024 ** 2, {
  error: (iss) => `${show(iss.input)} is not a memory size of at least "6m"`,
});

/** Bounds of runtime.inspectBodyLimit: how much of a request body the sidecar reads to decide its shape. */
export const INSPECT_BODY_LIMIT_MIN = 1024;
export const INSPECT_BODY_LIMIT_MAX = 64 * 1024 ** 2;

/** runtime.inspectBodyLimit in bytes ("256k", "1m", or a number of bytes); undefined when absent or unreadable. */
export function inspectBodyBytes(limit: string | number | undefined): number | undefined {
  return limit === undefined ? undefined : parseMemory(String(limit));
}

const bodyLimit = z.union([z.string(), z.number()]).refine(
  (v) => {
    const bytes = inspectBodyBytes(v);
    return bytes !== undefined && bytes >= INSPECT_BODY_LIMIT_MIN && bytes <= INSPECT_BODY_LIMIT_MAX;
  },
  { error: (iss) => `${show(iss.input)} is not a size from "1k" to "64m" (such as "256k" or "1m")` },
);

const sidecarDefaults = { image: DEFAULT_SIDECAR_IMAGE, memory: "128m", cpus: 0.5, pids: 128, readyTimeoutMs: 20_000, maxRestarts: 5 };

const sidecar = z.strictObject({
  image: z.string().min(1).default(sidecarDefaults.image),
  memory: memory.default(sidecarDefaults.memory),
  cpus: z.number().positive().max(64).default(sidecarDefaults.cpus),
  pids: z.number().int().min(16).max(32768).default(sidecarDefaults.pids),
  /** How long to wait for the sidecar's `started` event. */
  readyTimeoutMs: z.number().int().positive().max(300_000).default(sidecarDefaults.readyTimeoutMs),
  /** Restarts after unexpected exits before the sandbox is given up (fail closed either way). */
  maxRestarts: z.number().int().min(0).max(100).default(sidecarDefaults.maxRestarts),
});

/** How the control plane speaks MCP to a sandboxed server: its attached stdio, or the stdio↔HTTP bridge (src/bridge). */
export const TRANSPORTS = ["stdio", "http"] as const;
export type ServerTransport = (typeof TRANSPORTS)[number];

const runtimeDefaults = {
  isolation: "runc" as const,
  transport: "stdio" as const,
  catchAll: false,
  startCpuBoostMs: 1000,
  egressNetwork: "hangar-egress",
  trustedUpstreamRanges: [] as string[],
  sandboxSubnets: "10.213.0.0/16",
  baseImage: DEFAULT_BASE_IMAGE,
  sidecar: sidecarDefaults,
};

const runtime = z.strictObject({
  /** The kernel wall around every server (a policy's server.isolation overrides it); the sidecar always runs on runc. */
  isolation: z.enum(ISOLATIONS, { error: (iss) => `${show(iss.input)} is not an isolation; expected "runc" or "gvisor"` }).default("runc"),
  /**
   * `stdio`: MCP over the server container's attached stdio. `http`: the server runs under our
   * stdio↔HTTP bridge (as in a Kubernetes pod), and the control plane speaks streamable HTTP to it
   * through a Unix socket in the run's folder (the host has no address on the sandbox's network).
   * Needs `node` in the server image; not with gVisor. Applies to the gateway (`hangar serve`);
   * `hangar run`, replay and quarantine speak stdio.
   */
  transport: z.enum(TRANSPORTS, { error: (iss) => `${show(iss.input)} is not a transport; expected "stdio" or "http"` }).default("stdio"),
  /**
   * Every TCP connection of the server, to any address and port, goes through the sidecar
   * (raw IPs included) and leaves an event; capture then sees every port. Needs the
   * hangar/netns image (ip and nft), run for a moment with NET_ADMIN at each start.
   */
  catchAll: z.boolean().default(false),
  /**
   * Start-up CPU boost, in ms: the sidecar runs without its CPU quota until it serves, and the
   * server for this long after it is let go (memory and pids limits hold from the first
   * instant). Node's start is a burst that a 0.5 CPU quota stretches to twice its length.
   * A server gets its quota after this window whatever it does; 0 applies every quota at creation.
   */
  startCpuBoostMs: z.number().int().min(0).max(10_000).default(runtimeDefaults.startCpuBoostMs),
  /** The network sidecars use to reach declared destinations; created when missing. */
  egressNetwork: networkName.default(runtimeDefaults.egressNetwork),
  /** CIDRs whose addresses the sidecar may dial although they are private (internal APIs, tests). */
  trustedUpstreamRanges: z.array(cidr4).default([]),
  /** Pool carved into one /28 per sandbox network (static sidecar address, no Docker pool exhaustion). */
  sandboxSubnets: cidr4
    .refine((s) => Number(parseIpRange(s)?.cidr.split("/")[1] ?? 32) <= 28, {
      error: (iss) => `${show(iss.input)} is smaller than one /28`,
    })
    .default(runtimeDefaults.sandboxSubnets),
  baseImage: z.string().min(1).default(runtimeDefaults.baseImage),
  sidecar: sidecar.default(sidecarDefaults),
  /**
   * Extra roots (a PEM file, relative to hangar.yaml) the sidecar trusts when it re-originates
   * TLS for an inspected destination: private APIs, tests. The system roots are always trusted.
   */
  upstreamCaFile: z.string().min(1).optional(),
  /**
   * Names of environment variables (of the control plane) whose values the sidecar watches for
   * in every sandbox's traffic: raw and encoded, in requests it sees and in every name it is
   * asked for. A match is `secret-leak`. Values shorter than 8 characters are not watched.
   */
  watchedSecrets: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: (iss) => `${show(iss.input)} is not a valid environment variable name` })).optional(),
  /**
   * How much of a request body the sidecar reads, on requests it sees, to decide its shape
   * (field names). A longer body is `not-inspected` (too-large); with a baseline that parsed
   * bodies there, ENFORCING refuses it. Default 1 MiB.
   */
  inspectBodyLimit: bodyLimit.optional(),
  /**
   * The resolvers the sidecar asks for declared names ("address" or "address:port", IPv4).
   * Default: the engine's embedded resolver (127.0.0.11 in Docker), which forwards names it
   * does not know to the host's own resolver.
   */
  upstreamResolvers: z
    .array(
      z.string().refine((s) => /^(\d{1,3}\.){3}\d{1,3}(:\d{1,5})?$/.test(s) && parseIpRange(s.split(":")[0]!)?.version === 4, {
        error: (iss) => `${show(iss.input)} is not an IPv4 "address" or "address:port"`,
      }),
    )
    .min(1, { error: "upstreamResolvers needs at least one resolver (leave it out for the engine's own)" })
    .optional(),
});

export const RuntimeConfigSchema = z.strictObject({
  version: z.literal(1, { error: (iss) => `${show(iss.input)} is not a supported version; expected 1` }).optional(),
  runtime: runtime.default(runtimeDefaults),
});

export type RuntimeConfig = z.output<typeof RuntimeConfigSchema>;
export type RuntimeConfigInput = z.input<typeof RuntimeConfigSchema>;
export type RuntimeSettings = RuntimeConfig["runtime"];

export function defaultRuntimeConfig(): RuntimeConfig {
  return RuntimeConfigSchema.parse({});
}
