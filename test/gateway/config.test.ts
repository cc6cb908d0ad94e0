import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadHangarConfig, parseHangarConfigText } from "../../src/gateway/config/load-hangar-config.js";
import { formatIssues } from "../../src/policy/index.js";
import { hangar } from "../cli/capture-io.js";
import { project, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

describe("hangar.yaml", () => {
  it("embeds the runtime section from the runtime's own schema, with its defaults", async () => {
    await p.policy("alpha");
    p.writeConfig({ servers: ["policies/alpha.yaml"], runtime: { sandboxSubnets: "10.99.0.0/16" } });
    const loaded = await loadHangarConfig(p.config);
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.config.runtime.runtime).toMatchObject({ sandboxSubnets: "10.99.0.0/16", egressNetwork: "hangar-egress" });
    expect(loaded.config.identity).toBe("local-user");
    expect(loaded.config.auditPath).toBe(join(p.dir, ".hangar/audit.db"));
    expect(loaded.config.servers.map((s) => s.name)).toEqual(["alpha"]);
  });

  it("reports every problem as file:line:col: path: message, runtime and gateway keys alike", () => {
    const text = [
      "servers: []",
      "identity: 'bad identity'",
      "runtime:",
      "  sandboxSubnets: 10.0.0.0/33",
      "gateway:",
      "  idleTimeoutMS: 5",
      "rbac:",
      "  roles:",
      "    reader: { allow: [x__*] }",
      "  bindings:",
      "    alice: [reader]",
      "",
    ].join("\n");
    const parsed = parseHangarConfigText(text, "hangar.yaml");
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(formatIssues(parsed.issues).trimEnd().split("\n")).toEqual([
      "hangar.yaml:1:10: servers: servers must list at least one policy file",
      'hangar.yaml:2:11: identity: "bad identity" is not a valid identity (letters, digits and . _ @ + -, at most 128)',
      'hangar.yaml:4:19: runtime.sandboxSubnets: "10.0.0.0/33" is not an IPv4 CIDR',
      'hangar.yaml:4:19: runtime.sandboxSubnets: "10.0.0.0/33" is smaller than one /28',
      'hangar.yaml:6:3: gateway.idleTimeoutMS: unknown key "idleTimeoutMS"; did you mean "idleTimeoutMs"?',
    ]);
  });

  it("rejects bindings to undefined roles at their position", () => {
    const parsed = parseHangarConfigText("servers: [a.yaml]\nrbac:\n  roles: { reader: {} }\n  bindings:\n    alice: [reader, writer]\n", "h.yaml");
    expect(parsed.ok ? [] : formatIssues(parsed.issues).trimEnd().split("\n")).toEqual([
      'h.yaml:1:1: warning: identity: identity "local-user" has no role under rbac.bindings, so the stdio endpoint may call nothing',
      'h.yaml:5:21: rbac.bindings.alice[1]: role "writer" is not defined under rbac.roles',
    ]);
  });

  it("rejects missing policy files, broken policies (positioned in the policy) and duplicate server names", async () => {
    await p.policy("alpha");
    writeFileSync(join(p.dir, "policies/copy.yaml"), "version: 1\nname: alpha\nserver: { build: { context: . }, command: [x] }\n");
    writeFileSync(join(p.dir, "policies/broken.yaml"), "version: 1\nname: broken\nserver:\n  npm: { package: x, version: ^1.0.0 }\n");
    p.writeConfig({ servers: ["policies/alpha.yaml", "policies/missing.yaml", "policies/copy.yaml", "policies/broken.yaml"] });
    const run = await hangar(["serve", "--config", p.config, "--unsandboxed"]);
    expect(run.code).toBe(1);
    const cfg = p.config;
    expect(run.stderr.trimEnd().split("\n")).toEqual([
      `${cfg}:3:5: servers[1]: policies/missing.yaml: no such file`,
      `${cfg}:4:5: servers[2]: policies/copy.yaml: server name "alpha" is already used by servers[0] (policies/alpha.yaml); names must be unique, since they namespace tools as alpha__<tool>`,
      `${join(p.dir, "policies/broken.yaml")}:4:31: server.npm.version: "^1.0.0" is not an exact version (ranges and tags are not allowed; pin e.g. "1.2.3")`,
    ]);
  });

  it("runs servers in Docker sandboxes unless told otherwise: with no engine it says so, and names --unsandboxed", async () => {
    await p.policy("alpha");
    p.writeConfig({ servers: ["policies/alpha.yaml"] });
    // The real entry point (Dockerode reads DOCKER_HOST from the process), pointed at no engine.
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url)), "serve", "--config", p.config],
        { env: { ...process.env, DOCKER_HOST: "unix:///nonexistent/hangar-test/docker.sock", HANGAR_DEBUG: "" }, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stdout, stderr }),
      );
    });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^hangar: no Docker engine is running at unix:\/\/\/nonexistent\/hangar-test\/docker\.sock \(ENOENT\)\. .*hangar serve runs every server in a Docker sandbox; --unsandboxed runs them as plain local processes instead \(development only: no isolation, no egress enforcement\) \[HANGAR_DOCKER\]/);
  });
});
