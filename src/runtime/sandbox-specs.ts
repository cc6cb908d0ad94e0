import { dirname, isAbsolute, resolve } from "node:path";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import type { ContainerSpec, MountSpec, NetworkSpec, ResourceLimits } from "../docker/container-engine.js";
import { hangarLabels, LABEL_OWNER, SHARED } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import { HangarError } from "../core/errors.js";
import type { SidecarConfigInput } from "../sidecar/sidecar-config.js";
import { toLimits } from "./resource-limits.js";
import { GATE_MOUNT_FILE, gatedCommand } from "./start-gate.js";
import { inspectBodyBytes, type RuntimeSettings } from "./runtime-config.js";
import type { SandboxSubnet } from "./subnet-allocator.js";

/**
 * The pure half of a sandbox: every Docker object spec, built from the policy and the
 * runtime settings. The hardening lives here, in one place, and is unit-testable.
 */

export const POLICY_MOUNT_DIR = "/etc/hangar";
export const POLICY_MOUNT_FILE = `${POLICY_MOUNT_DIR}/policy.yaml`;
/** Where the sidecar reads the frozen baseline, when the sandbox runs with one. */
export const BASELINE_MOUNT_FILE = `${POLICY_MOUNT_DIR}/baseline.json`;
export const PROXY_PORT = 3128;
/** runtime.catchAll: where the sidecar's netns sends every other connection of the server (sandbox-gateway.ts). */
export const CATCH_ALL_PORT = 15001;
/** Where the sidecar reads runtime.upstreamCaFile (copied beside the policy). */
export const UPSTREAM_CA_MOUNT_FILE = `${POLICY_MOUNT_DIR}/upstream-ca.pem`;
/** The rate and tunnelling counts a restarted sidecar takes over, written by its supervisor (see counter-state.ts). */
export const COUNTERS_FILE_NAME = "counters.json";
/** Where the server finds the sandbox CA (ca.crt) and the system roots plus it (bundle.pem), read-only. */
export const SERVER_CA_DIR = "/etc/hangar-ca";
export const SERVER_CA_FILE = `${SERVER_CA_DIR}/ca.crt`;
export const SERVER_CA_BUNDLE = `${SERVER_CA_DIR}/bundle.pem`;
export const DNS_PORT = 53;
export const SIDECAR_ALIAS = "sidecar";
/** runtime.transport http: where the bridge's bundle is mounted, and the folder its Unix socket is made in (shared with the host). */
export const BRIDGE_MOUNT_FILE = "/opt/hangar/bridge.js";
export const BRIDGE_SOCKET_DIR = "/run/hangar-mcp";
export const BRIDGE_SOCKET_NAME = "mcp.sock";

/**
 * The server's command under the stdio↔HTTP bridge: `node <bridge> --listen <where> -- <server...>`.
 * The server's own command must be known (an npm package's bin or the policy's server.command).
 */
export function bridgedCommand(bridgeFile: string, listen: string, server: { readonly entrypoint?: readonly string[]; readonly cmd?: readonly string[] }, policyName: string): string[] {
  if (server.entrypoint === undefined || server.entrypoint.length === 0) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `policy ${policyName}: runtime.transport "http" needs the server's command (give server.command in the policy; the image's own entrypoint is not known before it runs)`, {
      data: { server: policyName },
    });
  }
  return ["node", bridgeFile, "--listen", listen, "--", ...server.entrypoint, ...(server.cmd ?? [])];
}

/** The uid:gid every Hangar container runs as (the base image's `hangar` user). */
export const SANDBOX_USER = "10001:10001";

const HARDENING = {
  user: SANDBOX_USER,
  capDrop: ["ALL"],
  securityOpt: ["no-new-privileges"],
  readonlyRootfs: true,
  init: true,
} as const;

export interface SandboxIdentity {
  readonly server: string;
  readonly run: string;
  /** `<hostname>:<pid>` of the owning process. */
  readonly owner: string;
  /** The run's state directory (absolute), labelled on everything it creates. */
  readonly stateDir?: string;
}

export interface SandboxNames {
  readonly network: string;
  readonly sidecar: string;
  readonly server: string;
}

export function sandboxNames(id: SandboxIdentity): SandboxNames {
  const stem = `hangar-${id.server}-${id.run}`;
  return { network: `${stem}-net`, sidecar: `${stem}-sidecar`, server: `${stem}-server` };
}

const labelsFor = (id: SandboxIdentity, role: "sidecar" | "server" | "network"): Record<string, string> =>
  hangarLabels({ server: id.server, role, run: id.run, ...(id.stateDir !== undefined ? { stateDir: id.stateDir } : {}) }, { [LABEL_OWNER]: id.owner });

/** Internal: no route out. inhibit_ipv4: the host takes no address on the bridge, so the gateway address leads nowhere. */
export function internalNetworkSpec(id: SandboxIdentity, subnet: SandboxSubnet): NetworkSpec {
  return {
    name: sandboxNames(id).network,
    labels: labelsFor(id, "network"),
    internal: true,
    driverOptions: { "com.docker.network.bridge.inhibit_ipv4": "true" },
    subnet: subnet.subnet,
    gateway: subnet.gateway,
  };
}

export function egressNetworkSpec(name: string): NetworkSpec {
  return { name, labels: hangarLabels({ server: SHARED, role: "network", run: SHARED }, { "hangar.network": "egress" }), internal: false };
}

/** Turns capture on whatever the policy says (replay, quarantine); never off. */
export type CaptureOverride = true | { readonly ports: readonly number[] };

export interface SidecarOverrides {
  readonly mode?: Mode;
  readonly capture?: CaptureOverride;
  /** The policy folder holds baseline.json (a frozen baseline) for the sidecar to enforce. */
  readonly baseline?: boolean;
  /** TLS inspection: the sandbox CA arrives on the sidecar's stdin; `upstreamCa`: upstream-ca.pem is in the policy folder. */
  readonly tls?: { readonly upstreamCa: boolean };
  /** The sandbox's secrets (injected and watched) arrive on the sidecar's stdin. */
  readonly secrets?: boolean;
}

export function sidecarConfig(options: { subnet: SandboxSubnet; runtime: RuntimeSettings } & SidecarOverrides): SidecarConfigInput {
  const { capture } = options;
  const bodyBytes = inspectBodyBytes(options.runtime.inspectBodyLimit);
  return {
    policyFile: POLICY_MOUNT_FILE,
    ...(options.mode ? { mode: options.mode } : {}),
    ...(capture !== undefined ? { capture: capture === true ? true : { ports: [...capture.ports] } } : {}),
    ...(options.baseline === true ? { baselineFile: BASELINE_MOUNT_FILE } : {}),
    ...(options.tls !== undefined ? { tls: { ca: "stdin" as const, ...(options.tls.upstreamCa ? { upstreamCaFile: UPSTREAM_CA_MOUNT_FILE } : {}) } } : {}),
    ...(options.secrets === true ? { secrets: "stdin" as const } : {}),
    // Only the sandbox side: from the egress network nobody may use this sandbox's allowances.
    listen: { host: options.subnet.sidecar, dnsPort: DNS_PORT, proxyPort: PROXY_PORT },
    answerSubnet: options.subnet.subnet,
    ...(options.runtime.catchAll === true ? { catchAll: { port: CATCH_ALL_PORT } } : {}),
    countersFile: `${POLICY_MOUNT_DIR}/${COUNTERS_FILE_NAME}`,
    ...(options.runtime.upstreamResolvers !== undefined ? { upstreamDns: [...options.runtime.upstreamResolvers] } : {}),
    trustedUpstreamRanges: [...options.runtime.trustedUpstreamRanges],
    ...(bodyBytes !== undefined ? { inspectBodyBytes: bodyBytes } : {}),
  };
}

export function sidecarContainerSpec(
  options: {
    id: SandboxIdentity;
    subnet: SandboxSubnet;
    runtime: RuntimeSettings;
    /** Host folder holding policy.yaml (and baseline.json), mounted read-only at /etc/hangar. */
    policyDir: string;
    /** Created without its CPU quota (runtime.startCpuBoostMs); the control plane sets it once the sidecar serves. */
    cpuBoost?: boolean;
  } & SidecarOverrides,
): ContainerSpec {
  const { mode, capture, baseline, tls, secrets } = options;
  const { id, subnet, runtime } = options;
  const limits = runtime.sidecar;
  const overrides = { ...(mode ? { mode } : {}), ...(capture !== undefined ? { capture } : {}), ...(baseline === true ? { baseline } : {}), ...(tls ? { tls } : {}), ...(secrets === true ? { secrets } : {}) };
  return {
    ...HARDENING,
    name: sandboxNames(id).sidecar,
    image: runtime.sidecar.image,
    labels: labelsFor(id, "sidecar"),
    hostname: "sidecar",
    env: { HANGAR_SIDECAR_CONFIG: JSON.stringify(sidecarConfig({ subnet, runtime, ...overrides })) },
    endpoint: { network: sandboxNames(id).network, ipv4Address: subnet.sidecar, aliases: [SIDECAR_ALIAS] },
    tmpfs: { "/tmp": "rw,noexec,nosuid,nodev,size=16m" },
    limits: boosted(toLimits(limits), options.cpuBoost),
    sysctls: {
      // Binds 53 and declared ports < 1024 without any capability.
      "net.ipv4.ip_unprivileged_port_start": "0",
      // Never a router between the sandbox and the egress network.
      "net.ipv4.ip_forward": "0",
      "net.ipv6.conf.all.disable_ipv6": "1",
    },
    mounts: [{ source: options.policyDir, target: POLICY_MOUNT_DIR, readOnly: true }],
    // The sandbox CA's key comes down stdin from the control plane: never a file, an env value or a label.
    // So do secret values (injected and watched ones).
    ...(tls !== undefined || secrets === true ? { openStdin: true } : {}),
    stopSignal: "SIGTERM",
    stopTimeoutSeconds: 5,
  };
}

/** Secrets come from the host environment at start, by name; a missing one stops the start. */
export function secretEnv(policy: Policy, source: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  const missing = policy.server.secrets.filter((name) => source[name] === undefined);
  if (missing.length > 0) {
    throw runtimeError("HANGAR_SECRET_MISSING", `policy ${policy.name} needs secret(s) ${missing.join(", ")} in the environment`, {
      data: { missing },
    });
  }
  for (const name of policy.server.secrets) out[name] = source[name]!;
  return out;
}

export function policyMounts(policy: Policy, policyFile: string): MountSpec[] {
  return policy.server.mounts.map((m) => ({
    source: isAbsolute(m.source) ? m.source : resolve(dirname(policyFile), m.source),
    target: m.target,
    readOnly: m.readOnly,
  }));
}

export function serverContainerSpec(options: {
  id: SandboxIdentity;
  subnet: SandboxSubnet;
  policy: Policy;
  policyFile: string;
  image: { readonly id: string; readonly entrypoint?: readonly string[]; readonly cmd?: readonly string[] };
  secrets: Readonly<Record<string, string>>;
  /** Host folder with the sandbox CA certificate (ca.crt) and bundle.pem, when TLS is inspected. */
  caDir?: string;
  /** gVisor: the OCI runtime, and a host resolv.conf naming the sidecar (gVisor's netstack cannot reach Docker's 127.0.0.11). */
  gvisor?: { readonly ociRuntime: string; readonly resolvConf: string };
  /** runtime.transport http: the bridge's bundle on the host, and the host folder where it makes its socket. */
  bridge?: { readonly file: string; readonly socketDir: string };
  /** The start gate's file on the host (start-gate.ts): a node command waits for the control plane's line. */
  gateFile?: string;
  /** Created without its CPU quota (runtime.startCpuBoostMs); the control plane sets it after the boost. */
  cpuBoost?: boolean;
}): ContainerSpec {
  const { id, subnet, policy } = options;
  // Every common TLS stack in the server trusts the sandbox CA: Node adds ca.crt to its roots,
  // OpenSSL, Python requests, curl and git read the bundle of the system roots plus it.
  const trust: Record<string, string> =
    options.caDir === undefined
      ? {}
      : {
          NODE_EXTRA_CA_CERTS: SERVER_CA_FILE,
          SSL_CERT_FILE: SERVER_CA_BUNDLE,
          REQUESTS_CA_BUNDLE: SERVER_CA_BUNDLE,
          CURL_CA_BUNDLE: SERVER_CA_BUNDLE,
          GIT_SSL_CAINFO: SERVER_CA_BUNDLE,
        };
  const proxy = `http://${subnet.sidecar}:${PROXY_PORT}`;
  const command = serverCommand(options);
  return {
    ...HARDENING,
    name: sandboxNames(id).server,
    image: options.image.id,
    labels: labelsFor(id, "server"),
    hostname: policy.name,
    ...(command.entrypoint !== undefined ? { entrypoint: command.entrypoint } : {}),
    ...(command.cmd !== undefined ? { cmd: command.cmd } : {}),
    env: {
      // The root filesystem is read-only: a server that writes under $HOME gets the tmpfs.
      HOME: "/tmp",
      ...policy.server.env,
      ...options.secrets,
      ...trust,
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      NO_PROXY: "localhost,127.0.0.1",
      no_proxy: "localhost,127.0.0.1",
    },
    endpoint: { network: sandboxNames(id).network, ipv4Address: subnet.server },
    // Docker's embedded resolver forwards to the sidecar; queries arrive from the server's own address.
    dns: [subnet.sidecar],
    tmpfs: { "/tmp": "rw,noexec,nosuid,nodev,size=64m" },
    limits: boosted(toLimits(policy.server.resources), options.cpuBoost),
    sysctls: { "net.ipv6.conf.all.disable_ipv6": "1" },
    mounts: [
      ...policyMounts(policy, options.policyFile),
      ...(command.gated && options.gateFile !== undefined ? [{ source: options.gateFile, target: GATE_MOUNT_FILE, readOnly: true }] : []),
      ...(options.caDir !== undefined ? [{ source: options.caDir, target: SERVER_CA_DIR, readOnly: true }] : []),
      ...(options.gvisor !== undefined ? [{ source: options.gvisor.resolvConf, target: "/etc/resolv.conf", readOnly: true }] : []),
      ...(options.bridge !== undefined
        ? [
            { source: options.bridge.file, target: BRIDGE_MOUNT_FILE, readOnly: true },
            { source: options.bridge.socketDir, target: BRIDGE_SOCKET_DIR, readOnly: false },
          ]
        : []),
    ],
    ...(options.gvisor !== undefined ? { ociRuntime: options.gvisor.ociRuntime } : {}),
    openStdin: true,
    stopSignal: "SIGTERM",
    stopTimeoutSeconds: 5,
  };
}

/**
 * The server's entrypoint and cmd: the bridge's when the transport is http, else the image's;
 * with the start gate preloaded when a gate file is given and the command starts node.
 */
export function serverCommand(options: {
  policy: Policy;
  image: { readonly entrypoint?: readonly string[]; readonly cmd?: readonly string[] };
  bridge?: { readonly file: string };
  gateFile?: string;
}): { entrypoint?: string[]; cmd?: string[]; gated: boolean } {
  const plain =
    options.bridge !== undefined
      ? { entrypoint: bridgedCommand(BRIDGE_MOUNT_FILE, `unix:${BRIDGE_SOCKET_DIR}/${BRIDGE_SOCKET_NAME}`, options.image, options.policy.name), cmd: [] as string[] }
      : { entrypoint: options.image.entrypoint && [...options.image.entrypoint], cmd: options.image.cmd && [...options.image.cmd] };
  const gated = options.gateFile === undefined ? undefined : gatedCommand(plain.entrypoint);
  const entrypoint = gated ?? plain.entrypoint;
  return { ...(entrypoint !== undefined ? { entrypoint } : {}), ...(plain.cmd !== undefined ? { cmd: plain.cmd } : {}), gated: gated !== undefined };
}

/** Limits with the CPU quota lifted for a start-up boost (set later with ContainerEngine.updateCpuLimit). */
function boosted(limits: ResourceLimits, boost: boolean | undefined): ResourceLimits {
  return boost === true ? { ...limits, nanoCpus: 0 } : limits;
}
