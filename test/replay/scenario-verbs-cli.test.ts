import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createBaselineRecordCommand } from "../../src/cli/commands/baseline-record.js";
import { createQuarantineCommand } from "../../src/cli/commands/quarantine.js";
import { createReplayCommand } from "../../src/cli/commands/replay.js";
import { captureSecrets, parseTimeout } from "../../src/cli/commands/scenario-verb.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { hangar } from "../cli/capture-io.js";

/**
 * The scenario verbs' front doors, without Docker: everything they can refuse is refused
 * before a runtime is opened (the services below would fail the test if one were).
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIL = join(ROOT, "test/fixtures/mail-server");
const FROZEN = join(ROOT, "test/fixtures/baselines/postmark-v1-frozen.json");
const noRuntime = {
  openServices: (): never => {
    throw new Error("the runtime must not be opened");
  },
};
const commands = [createBaselineRecordCommand(noRuntime), createReplayCommand(noRuntime), createQuarantineCommand(noRuntime)];
const run = (argv: string[]): ReturnType<typeof hangar> => hangar(argv, { commands });

describe("hangar replay, baseline record and quarantine refuse bad input before starting anything", () => {
  it("are listed in help", async () => {
    const root = await hangar(["--help"]);
    expect(root.stdout).toMatch(/^ {2}replay +Replay a scenario against a server/m);
    expect(root.stdout).toMatch(/^ {2}quarantine +Run an untrusted server with nothing allowed out/m);
    expect(root.stdout).toMatch(/^ {2}baseline record +Run a server through a scenario/m);
    expect((await hangar(["replay", "--help"])).stdout).toMatch(/Exit status: 0 when the behaviour matches the baseline, 1 on drift/);
  });

  it("usage errors: missing --scenario or --baseline, a bad --egress or --timeout", async () => {
    expect(await run(["replay", `${MAIL}/mail-v1.yaml`, "--baseline", FROZEN])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^hangar: --scenario <file> is required/) });
    expect(await run(["replay", `${MAIL}/mail-v1.yaml`, "--scenario", `${MAIL}/send-mail.yaml`])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--baseline <file> is required/) });
    expect(await run(["record", `${MAIL}/mail-v1.yaml`, "--scenario", `${MAIL}/send-mail.yaml`, "--egress", "none"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/not an egress mode/) });
    expect(await run(["quarantine", `${MAIL}/mail-v1.yaml`, "--timeout", "soon"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--timeout "soon" is not a number of seconds/) });
    expect(await run(["quarantine", `${MAIL}/mail-v1.yaml`, "--", "stdio"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/only for npm: and image: targets/) });
  });

  it("a scenario with a typo: replay exits 2, record and quarantine 1, each with file:line:col and a suggestion", async () => {
    const typo = `${MAIL}/send-mail-typo.yaml`;
    const line = `${typo}:5:5: calls[0].repat: unknown key "repat"; did you mean "repeat"?\n`;
    expect(await run(["replay", `${MAIL}/mail-v1.yaml`, "--scenario", typo, "--baseline", FROZEN])).toEqual({ code: 2, stdout: "", stderr: line });
    expect(await run(["record", `${MAIL}/mail-v1.yaml`, "--scenario", typo])).toEqual({ code: 1, stdout: "", stderr: line });
    expect(await run(["quarantine", `${MAIL}/mail-v1.yaml`, "--scenario", typo])).toEqual({ code: 1, stdout: "", stderr: line });
  });

  it("an invalid policy, a missing baseline, or a bad quarantine target", async () => {
    const bad = await run(["replay", join(ROOT, "test/fixtures/policies/invalid-cidr.yaml"), "--scenario", `${MAIL}/send-mail.yaml`, "--baseline", join(ROOT, "nope.json")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid-cidr\.yaml:10:13: egress\.allow\[1\]\.cidr: "10\.0\.0\.0\/33" is not a valid CIDR\n/);
    expect(bad.stderr).toMatch(/nope\.json: no such file/);
    const range = await run(["quarantine", "npm:left-pad@^1.0.0"]);
    expect(range).toMatchObject({ code: 1, stderr: expect.stringMatching(/^npm:left-pad@\^1\.0\.0: server\.npm\.version: "\^1\.0\.0" is not an exact version/) });
    expect(await run(["quarantine", "npm:left-pad"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/names no version/) });
    expect(await run(["quarantine", `${MAIL}/mail-v1.yaml`, "--report", "out.pdf"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/must end in \.md, \.html or \.json/) });
  });
});

describe("helpers", () => {
  it("--timeout is seconds, default 30", () => {
    expect(parseTimeout(undefined)).toBe(30_000);
    expect(parseTimeout("1.5")).toBe(1500);
    expect(() => parseTimeout("0")).toThrow(/not a number of seconds/);
  });

  it("capture fills missing secrets with a placeholder and keeps the ones given", () => {
    const policy = PolicySchema.parse({ version: 1, name: "p", server: { image: { ref: "x" }, secrets: ["TOKEN", "OTHER"] } });
    expect(captureSecrets(policy, { TOKEN: "real", PATH: "/bin" })).toEqual({ TOKEN: "real", OTHER: "hangar-capture-placeholder", PATH: "/bin" });
  });
});
