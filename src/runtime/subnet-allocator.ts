import { parseIpRange, type IpRange } from "../core/ip.js";

/** The fixed layout of one sandbox network. */
export interface SandboxSubnet {
  readonly subnet: string;
  /** Reserved by Docker's IPAM; with inhibit_ipv4 nobody holds it (not even the host). */
  readonly gateway: string;
  readonly sidecar: string;
  readonly server: string;
}

const dotted = (v: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");

export const SANDBOX_PREFIX = 28;

/**
 * Candidate /28s of `pool`, first free first, skipping every subnet already in use
 * (ours and foreign). The sidecar always gets .2 and the server .3, so a restarted
 * sidecar comes back at the address the server's DNS and proxy settings point to.
 */
export function* candidateSubnets(pool: string, used: readonly string[], prefix = SANDBOX_PREFIX): Generator<SandboxSubnet> {
  const range = parseIpRange(pool);
  if (range === undefined || range.version !== 4) throw new RangeError(`${pool} is not an IPv4 CIDR`);
  const taken = used.map((u) => parseIpRange(u)).filter((r): r is IpRange => r !== undefined && r.version === 4);
  const size = 1n << BigInt(32 - prefix);
  // Align the first block to the block size even when the pool is given unaligned.
  for (let start = range.start - (range.start % size); start + size - 1n <= range.end; start += size) {
    if (start < range.start) continue;
    const end = start + size - 1n;
    if (taken.some((t) => t.start <= end && t.end >= start)) continue;
    yield { subnet: `${dotted(start)}/${prefix}`, gateway: dotted(start + 1n), sidecar: dotted(start + 2n), server: dotted(start + 3n) };
  }
}
