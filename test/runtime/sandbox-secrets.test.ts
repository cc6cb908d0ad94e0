import { describe, expect, it } from "vitest";
import { PolicySchema, type PolicyInput } from "../../src/core/policy/policy-schema.js";
import { sandboxSecrets } from "../../src/runtime/sandbox-secrets.js";
import { sidecarConfig, sidecarContainerSpec } from "../../src/runtime/sandbox-specs.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";

const policy = (secrets: NonNullable<PolicyInput["server"]["secrets"]>) =>
  PolicySchema.parse({
    version: 1,
    name: "mail",
    server: { image: { ref: "mail:1" }, secrets },
    egress: { allow: [{ host: "api.postmarkapp.com", inspect: true }] },
  });

let counter = 0;
const random = (n: number): Uint8Array => new Uint8Array(n).fill(++counter);

describe("sandboxSecrets", () => {
  const p = policy([{ name: "POSTMARK_TOKEN", inject: { host: "api.postmarkapp.com", header: "X-Postmark-Server-Token" } }, "LEGACY_TOKEN", { name: "GH", host: "api.github.com" }]);
  const source = { POSTMARK_TOKEN: "real-postmark-value", LEGACY_TOKEN: "legacy-value-123", GH: "gh-value-12345678", OPS_KEY: "ops-key-value-999", PATH: "/bin" };

  it("gives the server a sentinel for an injected secret and the value for a plain one; the sidecar gets values, sentinels and hosts", () => {
    const s = sandboxSecrets(p, source, { random, watched: ["OPS_KEY", "UNSET"] });
    expect(s.serverEnv["POSTMARK_TOKEN"]).toMatch(/^hangar-sentinel-[a-z2-7]{26}$/);
    expect(Object.values(s.serverEnv)).not.toContain("real-postmark-value");
    expect(s.serverEnv).toMatchObject({ LEGACY_TOKEN: "legacy-value-123", GH: "gh-value-12345678" });
    expect(Object.keys(s.serverEnv)).toEqual(["POSTMARK_TOKEN", "LEGACY_TOKEN", "GH"]);
    expect(s.sidecar).toEqual([
      { name: "POSTMARK_TOKEN", sentinel: s.serverEnv["POSTMARK_TOKEN"], value: "real-postmark-value", inject: { host: "api.postmarkapp.com", header: "X-Postmark-Server-Token" } },
      { name: "LEGACY_TOKEN", value: "legacy-value-123" },
      { name: "GH", value: "gh-value-12345678", host: "api.github.com" },
      { name: "OPS_KEY", value: "ops-key-value-999" },
    ]);
  });

  it("draws a new sentinel per run", () => {
    expect(sandboxSecrets(p, source, { random }).serverEnv["POSTMARK_TOKEN"]).not.toBe(sandboxSecrets(p, source, { random }).serverEnv["POSTMARK_TOKEN"]);
  });

  it("refuses to start without a value, except an injected one under capture (CI needs no real credential)", () => {
    expect(() => sandboxSecrets(p, { LEGACY_TOKEN: "x", GH: "y" }, { random })).toThrow(/POSTMARK_TOKEN/);
    const captured = sandboxSecrets(p, { LEGACY_TOKEN: "legacy-value-123", GH: "gh-value-12345678" }, { random, capturing: true });
    expect(captured.sidecar[0]).not.toHaveProperty("value");
    expect(captured.serverEnv["POSTMARK_TOKEN"]).toMatch(/^hangar-sentinel-/);
  });

  it("the sidecar's spec says secrets come on stdin, and keeps stdin open; no value is in its env", () => {
    const runtime = defaultRuntimeConfig().runtime;
    const subnet = { subnet: "10.213.0.0/28", gateway: "10.213.0.1", sidecar: "10.213.0.2", server: "10.213.0.3" };
    expect(sidecarConfig({ subnet, runtime, secrets: true })).toMatchObject({ secrets: "stdin" });
    const spec = sidecarContainerSpec({ id: { server: "mail", run: "r1", owner: "o" }, subnet, runtime, policyDir: "/tmp/x", secrets: true });
    expect(spec.openStdin).toBe(true);
    expect(JSON.stringify(spec)).not.toContain("real-postmark-value");
  });
});
