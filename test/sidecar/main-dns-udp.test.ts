import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hangarPackageRoot } from "../../src/images/package-root.js";

/** HANGAR_SIDECAR_DNS_UDP names an addon that is not there: the sidecar refuses to start, naming the path. */
const ROOT = hangarPackageRoot();
let dir: string;
let configFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-dns-udp-"));
  const policyFile = join(dir, "policy.yaml");
  await writeFile(policyFile, "version: 1\nname: udp\nserver: { npm: { package: fixture, version: 1.0.0 } }\n");
  configFile = join(dir, "sidecar.json");
  await writeFile(configFile, JSON.stringify({ policyFile, answerAddress: "127.0.0.1", listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0 }, upstreamDns: ["127.0.0.4:53"] }));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe("hangar-sidecar: HANGAR_SIDECAR_DNS_UDP", () => {
  it("a path with no addon there: exit 2 before anything listens, and the message names the variable and the path", () => {
    const missing = join(dir, "nowhere/udp-batch.node");
    const run = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/sidecar/main.ts"), "--config", configFile], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, HANGAR_LOG_LEVEL: "warn", HANGAR_SIDECAR_DNS_UDP: missing },
      timeout: 30_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`HANGAR_SIDECAR_DNS_UDP: ${missing}: no such file`);
    // Nothing started: no lifecycle line on stdout.
    expect(run.stdout).not.toContain('"started"');
  });
});
