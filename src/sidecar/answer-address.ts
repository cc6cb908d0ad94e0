import { networkInterfaces } from "node:os";
import { parseIp, parseIpRange, rangeContains } from "../core/ip.js";
import { HangarError } from "../core/errors.js";

/** The sidecar's own IPv4 address inside `subnet` (the sandbox network), read from its interfaces. */
export function addressInSubnet(subnet: string, interfaces = networkInterfaces()): string {
  const range = parseIpRange(subnet);
  if (range === undefined) throw new HangarError("HANGAR_CONFIG_INVALID", `answerSubnet ${JSON.stringify(subnet)} is not a CIDR`);
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) {
      const ip = a.family === "IPv4" ? parseIp(a.address) : undefined;
      if (ip !== undefined && rangeContains(range, ip)) return a.address;
    }
  }
  throw new HangarError("HANGAR_CONFIG_INVALID", `no local interface has an address in answerSubnet ${subnet}`, {
    data: { subnet },
  });
}
