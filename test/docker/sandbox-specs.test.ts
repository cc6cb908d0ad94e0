import { describe, expect, it } from "vitest";
import { isHangarError } from "../../src/core/errors.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { hasRuntimeCode } from "../../src/docker/runtime-error.js";
import { defaultRuntimeConfig, RuntimeConfigSchema } from "../../src/runtime/runtime-config.js";
import { toLimits } from "../../src/runtime/resource-limits.js";
import { internalNetworkSpec, secretEnv, serverContainerSpec, sidecarConfig, sidecarContainerSpec } from "../../src/runtime/sandbox-specs.js";
import { candidateSubnets } from "../../src/runtime/subnet-allocator.js";
import { SidecarConfigSchema } from "../../src/sidecar/sidecar-config.js";

const id = { server: "files", run: "r1", owner: "host:1" };
const policy = PolicySchema.parse({
  version: 1,
  name: "files",
  server: {
    npm: { package: "x", version: "1.0.0" },
    env: { LEVEL: "debug" },
    secrets: ["API_TOKEN"],
    mounts: [{ source: "data", target: "/data" }],
    resources: { memory: "200m", cpus: 1.5, pids: 100 },
  },
});
const subnet = [...candidateSubnets("10.213.0.0/16", [])][0]!;

describe("subnet allocation", () => {
  it("carves /28s with fixed roles and skips any overlap, foreign or ours", () => {
    expect(subnet).toEqual({ subnet: "10.213.0.0/28", gateway: "10.213.0.1", sidecar: "10.213.0.2", server: "10.213.0.3" });
    const next = candidateSubnets("10.213.0.0/16", ["10.213.0.0/28", "10.213.0.20/30", "172.17.0.0/16"]).next().value;
    expect(next?.subnet).toBe("10.213.0.32/28");
    expect([...candidateSubnets("10.213.0.0/27", ["10.0.0.0/8"])]).toEqual([]);
  });
});

describe("container specs", () => {
  it("hardens the server: non-root, no capabilities, no-new-privileges, read-only root, limits, IPv6 off", () => {
    const spec = serverContainerSpec({ id, subnet, policy, policyFile: "/etc/p/files.yaml", image: { id: "sha256:abc" }, secrets: { API_TOKEN: "t" } });
    expect(spec).toMatchObject({
      user: "10001:10001",
      capDrop: ["ALL"],
      securityOpt: ["no-new-privileges"],
      readonlyRootfs: true,
      init: true,
      openStdin: true,
      dns: ["10.213.0.2"],
      endpoint: { network: "hangar-files-r1-net", ipv4Address: "10.213.0.3" },
      sysctls: { "net.ipv6.conf.all.disable_ipv6": "1" },
      limits: { memoryBytes: 200 * 1024 * 1024, nanoCpus: 1_500_000_000, pids: 100 },
      mounts: [{ source: "/etc/p/data", target: "/data", readOnly: true }],
    });
    expect(spec.tmpfs).toHaveProperty("/tmp");
    expect(spec.env).toMatchObject({ HOME: "/tmp", LEVEL: "debug", API_TOKEN: "t", HTTP_PROXY: "http://10.213.0.2:3128", https_proxy: "http://10.213.0.2:3128" });
    expect(spec.labels).toMatchObject({ "hangar.managed": "true", "hangar.server": "files", "hangar.role": "server", "hangar.run": "r1" });
  });

  it("hardens the sidecar too, lets it bind low ports without capabilities, and never forwards", () => {
    const spec = sidecarContainerSpec({ id, subnet, runtime: defaultRuntimeConfig().runtime, policyDir: "/tmp/p" });
    expect(spec).toMatchObject({ user: "10001:10001", capDrop: ["ALL"], securityOpt: ["no-new-privileges"], readonlyRootfs: true });
    expect(spec.sysctls).toEqual({
      "net.ipv4.ip_unprivileged_port_start": "0",
      "net.ipv4.ip_forward": "0",
      "net.ipv6.conf.all.disable_ipv6": "1",
    });
    expect(spec.mounts).toEqual([{ source: "/tmp/p", target: "/etc/hangar", readOnly: true }]);
    expect(spec.endpoint).toEqual({ network: "hangar-files-r1-net", ipv4Address: "10.213.0.2", aliases: ["sidecar"] });
    expect(spec.labels["hangar.role"]).toBe("sidecar");
  });

  it("hands the sidecar a config its own schema accepts", () => {
    const runtime = { ...defaultRuntimeConfig().runtime, trustedUpstreamRanges: ["172.30.0.0/16"] };
    const parsed = SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime, mode: "observing" }));
    expect(parsed).toMatchObject({ policyFile: "/etc/hangar/policy.yaml", answerSubnet: "10.213.0.0/28", mode: "observing", trustedUpstreamRanges: ["172.30.0.0/16"] });
    // The sandbox side only: never the egress network's address.
    expect(parsed.listen).toMatchObject({ host: subnet.sidecar, dnsPort: 53, proxyPort: 3128 });
  });

  it("hands the sidecar runtime.upstreamResolvers, and the engine's resolver when there are none", () => {
    const runtime = { ...defaultRuntimeConfig().runtime, upstreamResolvers: ["172.30.0.53", "172.30.0.54:5353"] };
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime })).upstreamDns).toEqual(["172.30.0.53", "172.30.0.54:5353"]);
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime: defaultRuntimeConfig().runtime })).upstreamDns).toBeUndefined();
    expect(() => RuntimeConfigSchema.parse({ runtime: { upstreamResolvers: ["dns.example"] } })).toThrow(/is not an IPv4/);
  });

  it("gives an inspecting sidecar its CA on stdin, and the server the CA certificate read-only", () => {
    const runtime = defaultRuntimeConfig().runtime;
    const sidecar = sidecarContainerSpec({ id, subnet, runtime, policyDir: "/tmp/p", tls: { upstreamCa: true } });
    expect(sidecar.openStdin).toBe(true);
    const config = SidecarConfigSchema.parse(JSON.parse(sidecar.env!["HANGAR_SIDECAR_CONFIG"]!));
    expect(config.tls).toEqual({ ca: "stdin", upstreamCaFile: "/etc/hangar/upstream-ca.pem" });
    expect(JSON.stringify(sidecar)).not.toMatch(/PRIVATE KEY/);
    expect(sidecarContainerSpec({ id, subnet, runtime, policyDir: "/tmp/p" }).openStdin).toBeUndefined();
  });

  it("gives the sandbox network no IPv4 on the host and no route out", () => {
    expect(internalNetworkSpec(id, subnet)).toMatchObject({
      internal: true,
      driverOptions: { "com.docker.network.bridge.inhibit_ipv4": "true" },
      subnet: "10.213.0.0/28",
      gateway: "10.213.0.1",
    });
  });

  it("takes secrets from the given environment and names the missing ones (never their values)", () => {
    expect(secretEnv(policy, { API_TOKEN: "v", OTHER: "o" })).toEqual({ API_TOKEN: "v" });
    const err = (() => {
      try {
        return secretEnv(policy, {});
      } catch (e) {
        return e;
      }
    })();
    expect(hasRuntimeCode(err, "HANGAR_SECRET_MISSING")).toBe(true);
    expect((err as Error).message).toContain("API_TOKEN");
  });

  it("refuses memory limits Docker would refuse", () => {
    expect(() => toLimits({ memory: "1m", cpus: 1, pids: 10 })).toThrow(/at least 6m/);
    try {
      toLimits({ memory: "1k", cpus: 1, pids: 10 });
    } catch (e) {
      expect(isHangarError(e, "HANGAR_POLICY_INVALID")).toBe(true);
    }
  });
});
