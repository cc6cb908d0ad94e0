import { describe, expect, it } from "vitest";
import { HangarConfigSchema } from "../../src/gateway/config/hangar-config-schema.js";
import { GATEWAY_KEYS, parseRuntimeConfig } from "../../src/runtime/runtime-config-loader.js";
import { RuntimeConfigSchema } from "../../src/runtime/runtime-config.js";

/** hangar.yaml is one file read by two loaders; they must agree on who owns which key. */
describe("hangar.yaml shared by the runtime and the gateway", () => {
  it("the runtime loader sets aside exactly the gateway's top-level keys", () => {
    const gatewayOnly = Object.keys(HangarConfigSchema.shape).filter((k) => !(k in RuntimeConfigSchema.shape));
    expect([...gatewayOnly].sort()).toEqual([...GATEWAY_KEYS].sort());
  });

  it("a full gateway config starts sandboxes with its runtime section", () => {
    const text = "servers: [policies/everything.yaml]\nidentity: alice\nruntime:\n  egressNetwork: corp-egress\n";
    const result = parseRuntimeConfig(text, "hangar.yaml");
    expect(result.ok && result.config.runtime.egressNetwork).toBe("corp-egress");
  });

  it("still refuses a key neither side knows, at its line", () => {
    const result = parseRuntimeConfig("servers: [a.yaml]\nruntme: {}\n", "hangar.yaml");
    expect(result.ok).toBe(false);
    expect(!result.ok && result.issues[0]).toMatchObject({ line: 2, col: 1 });
  });
});
