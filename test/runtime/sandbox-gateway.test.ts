import { describe, expect, it } from "vitest";
import { CATCH_ALL_PORT, sidecarConfig } from "../../src/runtime/sandbox-specs.js";
import { GATEWAY_LINK, gatewayPlan, gatewaySetupSpec } from "../../src/runtime/sandbox-gateway.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";

const subnet = { subnet: "10.213.0.16/28", gateway: "10.213.0.17", sidecar: "10.213.0.18", server: "10.213.0.19" };
const id = { server: "demo", run: "r1", owner: "host:1" };

describe("the catch-all gateway plan", () => {
  const plan = gatewayPlan(subnet);

  it("sends every TCP connection that came over the veth, and the sidecar's own undeclared ports, to the catch-all", () => {
    expect(plan.sidecarRules).toContain(`iifname "${GATEWAY_LINK.sidecarIf}" meta l4proto tcp dnat to 10.213.0.18:${CATCH_ALL_PORT}`);
    expect(plan.sidecarRules).toContain(`ip saddr 10.213.0.19 ip daddr 10.213.0.18 tcp dport != { 53, 3128 } dnat to 10.213.0.18:${CATCH_ALL_PORT}`);
  });

  it("keeps only the sidecar's address on the sandbox network and routes everything else, the rest of the subnet included, over the veth", () => {
    expect(plan.serverRoutes.trim().split("\n")).toEqual([
      "addr add 198.18.0.2/30 dev hgw1",
      "link set hgw1 up",
      "route replace 10.213.0.18/32 dev eth0 src 10.213.0.19",
      "route replace 10.213.0.16/28 via 198.18.0.1 dev hgw1",
      "route replace default via 198.18.0.1 dev hgw1",
    ]);
    expect(plan.sidecarLinks).toContain("link add hgw0 type veth peer name hgw1 netns server");
  });

  it("delivers every UDP datagram from the veth locally, its original port moved into the source port, and drops the rest but TCP", () => {
    expect(plan.sidecarLinks).toContain("route add local 0.0.0.0/0 dev lo table 213");
    expect(plan.sidecarLinks).toContain("rule add iif hgw0 lookup 213 priority 213");
    expect(plan.sidecarRules).toContain(`iifname "hgw0" meta l4proto udp udp sport set udp dport udp dport set ${CATCH_ALL_PORT} notrack accept`);
    // DNS to the sidecar is left alone; the catch-all port is never reachable directly.
    expect(plan.sidecarRules).toContain(`ip saddr 10.213.0.19 ip daddr 10.213.0.18 udp dport != 53 udp sport set udp dport`);
    expect(plan.sidecarRules).toContain(`udp dport ${CATCH_ALL_PORT} drop`);
    expect(plan.sidecarRules).toContain(`iifname "hgw0" meta l4proto != { tcp, udp } drop`);
  });

  it("runs each step as root with NET_ADMIN only, read-only, inside the namespace it changes", () => {
    const spec = gatewaySetupSpec({
      target: { id, subnet, sidecarId: "s", serverId: "v", workDir: "/tmp/x" },
      image: "hangar/netns:local",
      step: "links",
      networkOf: "s",
      cmd: ["ip", "-batch", "/etc/hangar-gateway/links.ip"],
      serverNetns: "/proc/42/ns/net",
    });
    expect(spec).toMatchObject({ capDrop: ["ALL"], capAdd: ["NET_ADMIN"], readonlyRootfs: true, networkOf: "s", securityOpt: ["no-new-privileges"] });
    expect(spec.mounts).toEqual([
      { source: "/tmp/x", target: "/etc/hangar-gateway", readOnly: true },
      { source: "/proc/42/ns/net", target: "/run/netns/server", readOnly: true },
    ]);
    expect(spec.labels).toMatchObject({ "hangar.managed": "true", "hangar.server": "demo", "hangar.run": "r1", "hangar.part": "gateway" });
  });

  it("the sidecar opens its catch-all only when runtime.catchAll says so", () => {
    const runtime = defaultRuntimeConfig().runtime;
    expect(sidecarConfig({ subnet, runtime }).catchAll).toBeUndefined();
    expect(sidecarConfig({ subnet, runtime: { ...runtime, catchAll: true } }).catchAll).toEqual({ port: CATCH_ALL_PORT });
  });
});
