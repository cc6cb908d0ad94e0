import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createStopCommand } from "../../src/cli/commands/stop.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

const root = mkdtempSync(join(tmpdir(), "hangar-json-output-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("--json on the verbs that lacked it", () => {
  it("token create and revoke", async () => {
    mkdirSync(join(root, "tokens"), { recursive: true });
    const config = join(root, "tokens", "hangar.yaml");
    writeFileSync(config, "servers: [p.yaml]\n");
    const created = await hangar(["token", "create", "--identity", "ci", "--json", "--config", config]);
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout) as { id: string; identity: string; token: string };
    expect(token).toMatchObject({ identity: "ci", id: expect.any(String), token: expect.any(String) });
    const revoked = await hangar(["token", "revoke", token.id, "--json", "--config", config]);
    expect(JSON.parse(revoked.stdout)).toEqual({ id: token.id, revoked: true });
  });

  it("stop", async () => {
    const fake = listingEngine([sandbox("memory", "r1")]);
    const run = await hangar(["stop", "memory", "--json"], { commands: [createStopCommand({ openContext: fake.open })] });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ stopped: [{ server: "memory", run: "r1", owner: "elsewhere:1", ownerAlive: false }], failed: [] });
  });
});
