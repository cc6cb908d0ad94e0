import { describe, expect, it } from "vitest";
import { isHangarError } from "../../src/core/errors.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { LocalProcessLauncher } from "../../src/gateway/local-process-launcher.js";
import { silentLogger } from "../../src/log.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";

/**
 * `inject` secrets exist so that the real value never enters the server's process: the
 * local launcher has no sidecar to substitute a sentinel, so it refuses such a policy
 * rather than put the value in the env.
 */
describe("the local launcher and inject secrets", () => {
  it("refuses a policy with an inject secret, naming the server and the secret, before anything runs", async () => {
    const policy = PolicySchema.parse({
      version: 1,
      name: "mail",
      server: {
        npm: { package: "fixture", version: "1.0.0" },
        command: ["node", "-e", "process.stdout.write(process.env.MAIL_TOKEN ?? '')"],
        secrets: [{ name: "MAIL_TOKEN", inject: { host: "api.mail.test", header: "X-Mail-Token" } }],
      },
      egress: { allow: [{ host: "api.mail.test", ports: [443], inspect: true }] },
    });
    const err = await new LocalProcessLauncher()
      .launch(policy, { policyFile: "/tmp/mail.yaml", runtime: defaultRuntimeConfig(), mode: "enforcing", secretSource: { MAIL_TOKEN: "real-value" }, stateDir: "/tmp", logger: silentLogger() })
      .catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_GATEWAY_LAUNCH_FAILED")).toBe(true);
    expect((err as Error).message).toContain('"mail"');
    expect((err as Error).message).toContain("MAIL_TOKEN");
    expect((err as Error).message).not.toContain("real-value");
  });
});
