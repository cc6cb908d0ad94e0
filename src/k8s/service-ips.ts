import { createHash } from "node:crypto";
import { parseIpRange } from "../core/ip.js";
import { HangarError } from "../core/errors.js";

/**
 * Fixed ClusterIPs for the sidecar Services. A server's DNS must name its sidecar by address
 * (`dnsConfig.nameservers` takes IPs only), and the sidecar answers declared names with that
 * same address, so both are known when the manifests are rendered. Each server hashes to a
 * slot of the range, probing onward on collision: adding a server leaves the others' addresses
 * alone (a Service's clusterIP cannot change once created).
 */

const dotted = (v: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");

export function allocateServiceIps(servers: readonly string[], range: string): Map<string, string> {
  const parsed = parseIpRange(range);
  if (parsed === undefined || parsed.version !== 4) {
    throw new HangarError("HANGAR_USAGE", `--service-ip-range ${JSON.stringify(range)} is not an IPv4 CIDR`);
  }
  // The network and broadcast addresses of the range are never handed out.
  const first = parsed.start + 1n;
  const size = parsed.end - parsed.start - 1n;
  if (size < BigInt(servers.length)) {
    throw new HangarError("HANGAR_USAGE", `--service-ip-range ${range} has ${size} usable addresses for ${servers.length} servers`);
  }
  const taken = new Set<bigint>();
  const out = new Map<string, string>();
  for (const name of [...servers].sort()) {
    let slot = BigInt(`0x${createHash("sha256").update(name).digest("hex").slice(0, 12)}`) % size;
    while (taken.has(slot)) slot = (slot + 1n) % size;
    taken.add(slot);
    out.set(name, dotted(first + slot));
  }
  return out;
}
