import * as z from "zod";
import { parseIp, parseIpRange } from "../core/ip.js";
import { DEFAULT_MAX_BODY_BYTES } from "../core/request-shape.js";

/**
 * How one sidecar process is wired: where it listens, what it answers, whom it asks.
 * The runtime writes this (as JSON) for each sandbox; tests build it inline.
 */
const hostPort = z.string().refine((s) => parseUpstream(s) !== undefined, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv4 "address" or "address:port"`,
});
const ipv4 = z.string().refine((s) => parseIp(s)?.version === 4, {
  error: (iss) => `${JSON.stringify(iss.input)} is not an IPv4 address`,
});
const cidr = z.string().refine((s) => parseIpRange(s) !== undefined, {
  error: (iss) => `${JSON.stringify(iss.input)} is not a valid CIDR`,
});
const port = z.number().int().min(0).max(65535);

export const SidecarConfigSchema = z
  .strictObject({
  /** Policy YAML file; re-read on SIGHUP. */
  policyFile: z.string().min(1),
  /** Overrides the policy's egress.mode (e.g. `hangar run --mode observing`). */
  mode: z.enum(["enforcing", "observing"]).optional(),
  /**
   * Overrides the policy's egress.capture, as the policy spells it (`true`, or `{ ports }`):
   * `hangar replay` and `hangar quarantine` run a policy in capture without editing it.
   */
  capture: z.union([z.boolean(), z.strictObject({ ports: z.array(port.min(1)).min(1) })]).optional(),
  /** A frozen baseline (JSON); drift from it is blocked (ENFORCING) or would-block (OBSERVING). Re-read on SIGHUP. */
  baselineFile: z.string().min(1).optional(),
  listen: z
    .strictObject({
      host: ipv4.default("0.0.0.0"),
      dnsPort: port.default(53),
      proxyPort: port.default(3128),
      /** declared port → local listen port; tests map 443 → 0. Unmapped ports listen on themselves. */
      transparentPorts: z.record(z.string().regex(/^\d+$/), port).default({}),
    })
    .default({ host: "0.0.0.0", dnsPort: 53, proxyPort: 3128, transparentPorts: {} }),
  /** The address declared names resolve to (the sidecar's own address on the sandbox network). */
  answerAddress: ipv4.optional(),
  /** Alternatively: the sandbox network's subnet; the sidecar answers with its own address in it. */
  answerSubnet: cidr.optional(),
  /** Upstream resolvers the sidecar asks. Default: the nameservers of /etc/resolv.conf. */
  upstreamDns: z.array(hostPort).optional(),
  /** Private ranges the operator vouches for (internal APIs, tests): answers there are not refused. */
  trustedUpstreamRanges: z.array(cidr).default([]),
  /**
   * TLS inspection, for rules that say `inspect: true`. The sandbox CA comes from PEM files, or
   * as one JSON line on stdin (`{"caCertPem": "...", "caKeyPem": "..."}`): the control plane's
   * way, so the key never lands in a file, a label, an env value or an image.
   */
  tls: z
    .strictObject({
      ca: z.union([z.literal("stdin"), z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) })]),
      /** Extra roots (PEM) trusted when the sidecar re-originates TLS, beside the system roots. */
      upstreamCaFile: z.string().min(1).optional(),
    })
    .optional(),
  /** Bytes of a request body read to decide its shape; past it the body is `not-inspected` (too-large). */
  inspectBodyBytes: z.number().int().min(1).max(64 * 1024 ** 2).default(DEFAULT_MAX_BODY_BYTES),
  /**
   * "stdin": the sandbox's secrets arrive in the stdin line (its `secrets` array: name, value,
   * sentinel, inject or own host), beside the CA when TLS is inspected. The sidecar writes
   * injected values into their declared header and watches every secret for leaks.
   */
  secrets: z.literal("stdin").optional(),
  /** Look for credential shapes (AWS keys, tokens, JWTs, private keys) in every request the sidecar sees: `credential-pattern`. Off only to measure its cost (bench/secrets.ts). */
  credentialScan: z.boolean().default(true),
  /**
   * The port every other TCP connection of the sandbox is redirected to (runtime.catchAll: the
   * sandbox's route leads into the sidecar's netns, which rewrites it here keeping the original
   * destination). Absent: no catch-all listener. 0 picks a free port (tests).
   */
  catchAll: z.strictObject({ port }).optional(),
  /** How long the transparent path waits for a first byte before falling back to port routing. */
  peekTimeoutMs: z.number().int().positive().default(1500),
  /** Live client connections across all listeners; past it a new one is refused at once (`connection-cap`). */
  maxConnections: z.number().int().min(1).max(1_000_000).default(1024),
  /** A spliced connection (opaque TCP, TLS, a CONNECT tunnel) with no byte either way this long is cut (`idle-timeout`). Default 5 minutes. */
  idleTimeoutMs: z.number().int().positive().default(300_000),
  /**
   * The memory the sidecar may use, in MiB. At 80% of it new connections are refused
   * (`memory-budget`) until it drops, well before the cgroup kills the process.
   * Default: the cgroup's memory limit, when one is set; otherwise no memory check.
   */
  memoryBudgetMiB: z.number().int().min(16).optional(),
  /** On SIGTERM, how long live connections may take to finish before they are cut (each still gets its close event). */
  drainTimeoutMs: z.number().int().min(0).default(5000),
  /**
   * Distinct names under each declared wildcard the sidecar looks up upstream per window,
   * whatever path asked (DNS, SNI, Host, CONNECT). Past it a new name is refused
   * (`tunnel-budget`); names already looked up keep working. Default 256 an hour.
   */
  lookupBudget: z
    .strictObject({
      names: z.number().int().min(1).max(100_000).optional(),
      windowSeconds: z.number().int().min(1).optional(),
    })
    .optional(),
  /**
   * Where a previous process of this sandbox left its rate and tunnelling counts (the
   * control plane writes it from the last `counters` event before a restart). Read at
   * start when present, so a crash cannot reset the limits. Missing: start from zero.
   */
  countersFile: z.string().min(1).optional(),
  })
  .refine((c) => (c.answerAddress === undefined) !== (c.answerSubnet === undefined), {
    error: 'give exactly one of "answerAddress" or "answerSubnet"',
  });

export type SidecarConfig = z.output<typeof SidecarConfigSchema>;
export type SidecarConfigInput = z.input<typeof SidecarConfigSchema>;

export interface Upstream {
  readonly host: string;
  readonly port: number;
}

export function parseUpstream(text: string): Upstream | undefined {
  const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (m === null || parseIp(m[1]!)?.version !== 4) return undefined;
  const p = m[2] === undefined ? 53 : Number(m[2]);
  return p >= 1 && p <= 65535 ? { host: m[1]!, port: p } : undefined;
}

/** Nameservers from resolv.conf text (IPv4 only: the sidecar never speaks IPv6 upstream). */
export function nameserversFromResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const up = m ? parseUpstream(m[1]!) : undefined;
    if (up) out.push(up);
  }
  return out;
}
