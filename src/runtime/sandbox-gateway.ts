import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerEngine, ContainerSpec } from "../docker/container-engine.js";
import { hangarLabels, LABEL_OWNER } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import { CATCH_ALL_PORT, DNS_PORT, PROXY_PORT, sandboxNames, type SandboxIdentity } from "./sandbox-specs.js";
import type { SandboxSubnet } from "./subnet-allocator.js";

/**
 * runtime.catchAll: the sidecar becomes the sandbox's gateway, so every TCP connection the
 * server makes, to any address and port, reaches the sidecar's catch-all listener with its
 * original destination, and leaves an event.
 *
 * Why a veth pair and not just a route over the sandbox network: Docker's bridge for an
 * internal network drops (in the host's FORWARD chain, with br_netfilter) every frame whose
 * destination address is outside the subnet, so a route "default via <sidecar>" carries
 * nothing. A veth pair between the two namespaces never crosses the bridge. On the sidecar's
 * side, nft rewrites each such connection to the catch-all port (dnat keeps the original
 * destination in conntrack, where SO_ORIGINAL_DST reads it without any capability).
 *
 * The setup runs in short-lived containers of hangar/netns (ip and nft, nothing else) with
 * NET_ADMIN, joining one namespace each: the server and the sidecar keep every capability
 * dropped, and the server cannot undo a route without NET_ADMIN. Pure text below, so the
 * plan is unit-tested; GatewayInstaller runs it.
 */


/** The veth pair, on a /30 of the benchmarking range (RFC 2544), which no real destination uses. */
export const GATEWAY_LINK = {
  sidecarIf: "hgw0",
  serverIf: "hgw1",
  sidecarAddress: "198.18.0.1",
  serverAddress: "198.18.0.2",
  prefix: 30,
} as const;

/** The routing table (and rule priority) that delivers every address arriving over the veth locally. */
const LOCAL_TABLE = 213;

/** Where the setup containers find their scripts and the other namespace. */
const SCRIPTS_DIR = "/etc/hangar-gateway";
const PEER_NETNS = "/run/netns/server";

export interface GatewayPlan {
  /** `ip -batch`, in the sidecar's netns with the server's at /run/netns/server: the veth pair. */
  readonly sidecarLinks: string;
  /** `nft -f`, in the sidecar's netns: every connection of the server to the catch-all port. */
  readonly sidecarRules: string;
  /** `ip -batch`, in the server's netns: the sidecar's address over the sandbox network, everything else over the veth. */
  readonly serverRoutes: string;
}

export function gatewayPlan(subnet: SandboxSubnet, catchAllPort = CATCH_ALL_PORT): GatewayPlan {
  const l = GATEWAY_LINK;
  const catchAll = `${subnet.sidecar}:${catchAllPort}`;
  return {
    sidecarLinks: [
      `link add ${l.sidecarIf} type veth peer name ${l.serverIf} netns server`,
      `addr add ${l.sidecarAddress}/${l.prefix} dev ${l.sidecarIf}`,
      `link set ${l.sidecarIf} up`,
      // Whatever address a datagram from the veth is for, it is delivered here (UDP keeps its
      // destination address this way; TCP was already rewritten to the catch-all).
      `route add local 0.0.0.0/0 dev lo table ${LOCAL_TABLE}`,
      `rule add iif ${l.sidecarIf} lookup ${LOCAL_TABLE} priority ${LOCAL_TABLE}`,
      "",
    ].join("\n"),
    sidecarRules: [
      "table ip hangar_gateway {",
      "  chain prerouting {",
      "    type nat hook prerouting priority dstnat - 10; policy accept;",
      // Anything the server sends over the veth goes to an address other than the sidecar's.
      `    iifname "${l.sidecarIf}" meta l4proto tcp dnat to ${catchAll}`,
      // The sidecar's own address on a port nobody listens on (capture answers every name with it).
      `    iifname != "${l.sidecarIf}" ip saddr ${subnet.server} ip daddr ${subnet.sidecar} tcp dport != { ${DNS_PORT}, ${PROXY_PORT} } dnat to ${catchAll}`,
      "  }",
      // UDP: stateless, before conntrack. The original destination port moves into the source
      // port and the datagram goes to the catch-all port, its address unchanged (the local
      // route above delivers it). DNS to the sidecar stays as it is; nothing else reaches the
      // catch-all port directly, and nothing but TCP and UDP comes in over the veth.
      "  chain raw {",
      "    type filter hook prerouting priority raw; policy accept;",
      `    iifname "${l.sidecarIf}" meta l4proto udp udp sport set udp dport udp dport set ${catchAllPort} notrack accept`,
      `    iifname != "${l.sidecarIf}" ip saddr ${subnet.server} ip daddr ${subnet.sidecar} udp dport != ${DNS_PORT} udp sport set udp dport udp dport set ${catchAllPort} notrack accept`,
      `    udp dport ${catchAllPort} drop`,
      `    iifname "${l.sidecarIf}" meta l4proto != { tcp, udp } drop`,
      "  }",
      "}",
      "",
    ].join("\n"),
    serverRoutes: [
      `addr add ${l.serverAddress}/${l.prefix} dev ${l.serverIf}`,
      `link set ${l.serverIf} up`,
      // DNS (Docker's resolver forwards to it) and the explicit proxy stay on the sandbox network.
      `route replace ${subnet.sidecar}/32 dev eth0 src ${subnet.server}`,
      // The rest of the subnet (its gateway, unused addresses) and everything else: the sidecar.
      `route replace ${subnet.subnet} via ${l.sidecarAddress} dev ${l.serverIf}`,
      `route replace default via ${l.sidecarAddress} dev ${l.serverIf}`,
      "",
    ].join("\n"),
  };
}

export interface GatewayTarget {
  readonly id: SandboxIdentity;
  readonly subnet: SandboxSubnet;
  readonly sidecarId: string;
  readonly serverId: string;
  /** A host folder of this sandbox (removed with it) for the setup scripts. */
  readonly workDir: string;
}

/** Times of one install, for the start-up budget. */
export interface GatewayTimings {
  readonly linksMs: number;
  readonly routesMs: number;
  readonly totalMs: number;
}

type Step = "links" | "rules" | "routes";

/** One setup container: root with NET_ADMIN only, read-only, in the namespace of `networkOf`. */
export function gatewaySetupSpec(options: { target: GatewayTarget; image: string; step: Step; networkOf: string; cmd: readonly string[]; serverNetns?: string }): ContainerSpec {
  const { id } = options.target;
  return {
    name: `${sandboxNames(id).sidecar}-gw-${options.step}`,
    image: options.image,
    labels: hangarLabels({ server: id.server, role: "sidecar", run: id.run }, { [LABEL_OWNER]: id.owner, "hangar.part": "gateway" }),
    cmd: options.cmd,
    user: "0:0",
    capDrop: ["ALL"],
    capAdd: ["NET_ADMIN"],
    securityOpt: ["no-new-privileges"],
    readonlyRootfs: true,
    networkOf: options.networkOf,
    // Ignored when joining another container's namespace; the type wants one.
    endpoint: { network: sandboxNames(id).network },
    mounts: [
      { source: options.target.workDir, target: SCRIPTS_DIR, readOnly: true },
      ...(options.serverNetns !== undefined ? [{ source: options.serverNetns, target: PEER_NETNS, readOnly: true }] : []),
    ],
    limits: { memoryBytes: 32 * 1024 ** 2, nanoCpus: 500_000_000, pids: 16 },
  };
}

/** Installs the plan; again after each sidecar restart (a restarted container gets a new netns, and the veth goes with the old one). */
export class GatewayInstaller {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly image: string,
    private readonly now: () => number = Date.now,
  ) {}

  async install(target: GatewayTarget): Promise<GatewayTimings> {
    const started = this.now();
    const plan = gatewayPlan(target.subnet);
    await mkdir(target.workDir, { recursive: true });
    await Promise.all([
      writeFile(join(target.workDir, "links.ip"), plan.sidecarLinks),
      writeFile(join(target.workDir, "rules.nft"), plan.sidecarRules),
      writeFile(join(target.workDir, "routes.ip"), plan.serverRoutes),
    ]);
    const server = await this.engine.inspectContainer(target.serverId);
    if (server?.pid === undefined || server.pid <= 0) {
      throw runtimeError("HANGAR_DOCKER", `catch-all: server container ${target.serverId} is not running, so its network namespace cannot be joined`);
    }
    // The rules and the veth are independent; the routes need the veth's server end.
    await Promise.all([
      this.run(target, "rules", target.sidecarId, ["nft", "-f", `${SCRIPTS_DIR}/rules.nft`]),
      this.run(target, "links", target.sidecarId, ["ip", "-batch", `${SCRIPTS_DIR}/links.ip`], `/proc/${server.pid}/ns/net`),
    ]);
    const linked = this.now();
    await this.run(target, "routes", target.serverId, ["ip", "-batch", `${SCRIPTS_DIR}/routes.ip`]);
    const done = this.now();
    return { linksMs: linked - started, routesMs: done - linked, totalMs: done - started };
  }

  private async run(target: GatewayTarget, step: Step, networkOf: string, cmd: readonly string[], serverNetns?: string): Promise<void> {
    const spec = gatewaySetupSpec({ target, image: this.image, step, networkOf, cmd, ...(serverNetns !== undefined ? { serverNetns } : {}) });
    // A leftover of an interrupted install of this very sandbox.
    await this.engine.removeContainer(spec.name);
    const id = await this.engine.createContainer(spec);
    try {
      await this.engine.startContainer(id);
      const code = await this.engine.waitContainer(id);
      if (code !== 0) {
        const output = await this.output(id);
        throw runtimeError("HANGAR_DOCKER", `catch-all setup step "${step}" (${cmd.join(" ")}) exited ${code}: ${output}`, { data: { step, exitCode: code } });
      }
    } finally {
      await this.engine.removeContainer(id);
    }
  }

  private async output(id: string): Promise<string> {
    const logs = await this.engine.logs(id, { follow: false });
    const chunks: Buffer[] = [];
    const read = (s: NodeJS.ReadableStream): Promise<void> =>
      new Promise((resolve) => {
        s.on("data", (c: Buffer) => chunks.push(c));
        s.on("end", resolve);
        s.on("close", resolve);
        s.on("error", resolve);
      });
    await Promise.all([read(logs.stdout), read(logs.stderr)]);
    logs.close();
    return Buffer.concat(chunks).toString("utf8").trim().slice(-2000);
  }
}
