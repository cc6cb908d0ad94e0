import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { suggestToolLabels } from "../../src/baseline/index.js";
import { parseBaselineText } from "../../src/baseline/index.js";
import { hangar } from "../cli/capture-io.js";

const FROZEN = "test/fixtures/baselines/postmark-v1-frozen.json";

describe("baseline to-policy: tool labels for flows", () => {
  it("suggests sends-external for a tool that reached a destination alone; a tool whose egress was only shared is named apart", async () => {
    const loaded = parseBaselineText(await readFile(FROZEN, "utf8"), FROZEN);
    if (!loaded.ok) throw new Error("fixture baseline does not load");
    const b = loaded.baseline;
    expect(suggestToolLabels(b)).toEqual({ suggested: [{ tool: "send_email", labels: ["sends-external"], because: ["api.mail.test:443"] }], uncertain: [] });
    const shared = { ...b, tools: b.tools.map((t) => (t.name === "send_email" ? { ...t, destinations: [], sharedDestinations: t.destinations } : t)) };
    expect(suggestToolLabels(shared)).toEqual({ suggested: [], uncertain: [{ tool: "send_email", labels: ["sends-external"], because: ["api.mail.test:443"] }] });
  });

  it("prints them as comments below the egress rules; uncommented, they pass policy lint", async () => {
    const run = await hangar(["baseline", "to-policy", FROZEN]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("# tools:\n#   labels:\n#     send_email: [sends-external]   # reached api.mail.test:443\n");
    const json = JSON.parse((await hangar(["baseline", "to-policy", FROZEN, "--json"])).stdout) as { toolLabels: unknown };
    expect(json.toolLabels).toEqual({ suggested: [{ tool: "send_email", labels: ["sends-external"], because: ["api.mail.test:443"] }], uncertain: [] });

    const dir = await mkdtemp(join(tmpdir(), "hangar-labels-"));
    try {
      const uncommented = run.stdout.replace(/^# (tools:| {2}labels:| {4}send_email.*)$/gm, "$1");
      const policy = join(dir, "postmark.yaml");
      await writeFile(policy, `version: 1\nname: postmark\nserver:\n  image:\n    ref: hangar-fixture/mail:1\n${uncommented}`);
      const lint = await hangar(["policy", "lint", policy]);
      expect(lint.stderr).toBe("1 file checked: no errors\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
