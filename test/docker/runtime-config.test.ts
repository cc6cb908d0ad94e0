import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isHangarError } from "../../src/core/errors.js";
import { formatRuntimeConfigIssue, loadRuntimeConfig, parseRuntimeConfig, type RuntimeConfigIssue } from "../../src/runtime/runtime-config-loader.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-rc-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("hangar.yaml", () => {
  it("defaults everything when no file is given", async () => {
    const config = await loadRuntimeConfig();
    expect(config.runtime).toMatchObject({
      egressNetwork: "hangar-egress",
      trustedUpstreamRanges: [],
      sandboxSubnets: "10.213.0.0/16",
      sidecar: { image: "hangar/sidecar:local", memory: "128m", cpus: 0.5, pids: 128 },
    });
  });

  it("reads the documented keys", async () => {
    const file = join(dir, "ok.yaml");
    await writeFile(
      file,
      "version: 1\nruntime:\n  egressNetwork: corp-egress\n  trustedUpstreamRanges: [10.20.0.0/16]\n  sidecar:\n    memory: 64m\n    cpus: 1\n",
    );
    const config = await loadRuntimeConfig(file);
    expect(config.runtime.egressNetwork).toBe("corp-egress");
    expect(config.runtime.trustedUpstreamRanges).toEqual(["10.20.0.0/16"]);
    expect(config.runtime.sidecar).toMatchObject({ memory: "64m", cpus: 1, pids: 128 });
  });

  it("reports every problem with file, line, column and path", () => {
    const text = [
      "runtime:", // 1
      "  egresNetwork: x", // 2
      "  trustedUpstreamRanges:", // 3
      "    - 10.0.0.0/8", // 4
      "    - 10.0.0.0/33", // 5
      "  sidecar:", // 6
      "    memory: lots", // 7
      "",
    ].join("\n");
    const result = parseRuntimeConfig(text, "hangar.yaml");
    expect(result.ok).toBe(false);
    const issues = (result as { issues: RuntimeConfigIssue[] }).issues;
    expect(issues.map(formatRuntimeConfigIssue)).toEqual([
      expect.stringMatching(/^hangar\.yaml:2:3: runtime: .*egresNetwork/),
      'hangar.yaml:5:7: runtime.trustedUpstreamRanges.1: "10.0.0.0/33" is not an IPv4 CIDR',
      'hangar.yaml:7:13: runtime.sidecar.memory: "lots" is not a memory size of at least "6m"',
    ]);
    expect(issues[0]).toMatchObject({ code: "unrecognized_keys", path: ["runtime"] });
  });

  it("reports YAML syntax errors at their position", () => {
    const result = parseRuntimeConfig("runtime:\n  egressNetwork: a\n  egressNetwork: b\n", "h.yaml");
    expect(result.ok).toBe(false);
    expect((result as { issues: RuntimeConfigIssue[] }).issues[0]).toMatchObject({ file: "h.yaml", line: 3, code: expect.stringMatching(/^yaml_/) });
  });

  it("throws HANGAR_CONFIG_INVALID with structured issues for a bad or missing file", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "runtime: { sandboxSubnets: 10.0.0.0/30 }\n");
    const err = await loadRuntimeConfig(bad).catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((err as Error).message).toContain("is smaller than one /28");
    const missing = await loadRuntimeConfig(join(dir, "nope.yaml")).catch((e: unknown) => e);
    expect(isHangarError(missing, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((missing as { data: { issues: RuntimeConfigIssue[] } }).data.issues[0]).toMatchObject({ code: "file_unreadable", line: 0 });
  });
});
