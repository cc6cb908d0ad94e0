import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AuditStore } from "../../src/audit/index.js";
import { loadSigner } from "../../src/audit/signing-keys.js";
import type { Command } from "../../src/cli/command.js";
import { verbs } from "../../src/cli/commands/index.js";
import { loadHangarConfig } from "../../src/gateway/config/load-hangar-config.js";
import { toolCall } from "../audit/support.js";
import { hangar } from "./capture-io.js";

const root = mkdtempSync(join(tmpdir(), "hangar-global-config-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A hangar.yaml in its own directory, its paths relative to it; its one policy is missing on purpose, so serve stops at the check. */
function writeConfig(name: string, body = ""): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "hangar.yaml");
  writeFileSync(file, `servers: [missing-policy.yaml]\naudit:\n  path: logs/audit.db\ngateway:\n  status: state/status.json\n  tokens: state/tokens.json\n${body}`);
  return file;
}

function leafPaths(list: readonly Command[], prefix: string[] = []): string[][] {
  return list.flatMap((c) => (c.subcommands !== undefined && c.subcommands.length > 0 ? leafPaths(c.subcommands, [...prefix, c.name]) : [[...prefix, c.name]]));
}

const leaves = async (): Promise<string[][]> => leafPaths(await Promise.all(verbs.map((v) => v.load())));

/** No real engine: a verb that reaches Docker fails fast instead. */
const NO_DOCKER = { DOCKER_HOST: `unix://${join(root, "no-docker.sock")}` };

async function within<T>(ms: number, what: string, run: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("the global --config", () => {
  it("every leaf verb answers --help, lists --config, and accepts --config <file> (and before the verb)", async () => {
    const config = writeConfig("walk");
    const paths = await leaves();
    expect(paths.length).toBeGreaterThan(25);
    expect(paths.map((p) => p.join(" "))).toEqual(expect.arrayContaining(["logs", "ps", "stop", "events", "prune"]));
    for (const path of paths) {
      const name = path.join(" ");
      const help = await hangar([...path, "--help"]);
      expect(help.code, name).toBe(0);
      expect(help.stdout, name).toMatch(/--config <[^>]+>/);
      // `run` bridges the process's own stdio: only its parsing is exercised (an unknown option after --config).
      const argv = path[0] === "run" ? [...path, "--config", config, "--no-such-flag"] : [...path, "--config", config];
      for (const args of [argv, ["--config", config, ...argv.filter((a, i) => !(a === "--config" || argv[i - 1] === "--config"))]]) {
        const result = await within(20_000, name, hangar(args, { env: NO_DOCKER }));
        expect(result.stderr, `${args.join(" ")}\n${result.stderr}`).not.toMatch(/unknown option --config/);
      }
    }
  }, 120_000);

  it("every verb that prints data takes --json (the rest print JSON already, or bridge a protocol, or only write files)", async () => {
    const exempt = new Map([
      ["policy schema", "prints a JSON Schema"],
      ["config schema", "prints a JSON Schema"],
      ["baseline record", "prints the baseline, which is JSON"],
      ["baseline freeze", "writes the file; says so on stderr"],
      ["audit export", "--format jsonl|ocsf"],
      ["serve", "speaks MCP"],
      ["run", "speaks MCP"],
    ]);
    const lacking: string[] = [];
    for (const path of await leaves()) {
      const name = path.join(" ");
      if (exempt.has(name)) continue;
      if (!/--json\b/.test((await hangar([...path, "--help"])).stdout)) lacking.push(name);
    }
    expect(lacking).toEqual([]);
  });

  it("rejects a --config with no value before the verb", async () => {
    expect(await hangar(["--config"])).toMatchObject({ code: 2, stderr: expect.stringContaining("--config needs a value") });
  });

  it("HANGAR_CONFIG stands in for --config, and --config wins over it", async () => {
    const config = writeConfig("env", "identity: from-env\n");
    const other = writeConfig("env-other", "identity: from-flag\n");
    const viaEnv = await hangar(["token", "list", "--json"], { env: { HANGAR_CONFIG: config } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const missing = await hangar(["token", "list"], { env: { HANGAR_CONFIG: join(root, "absent.yaml") } });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("absent.yaml");
    const flagWins = await hangar(["token", "list", "--config", other], { env: { HANGAR_CONFIG: join(root, "absent.yaml") } });
    expect(flagWins.code, flagWins.stderr).toBe(0);
  });
});

describe("the audit verbs read audit.path and the keys from the configuration", () => {
  it("init puts the keys beside audit.path, and verify, query and export find the log and the key there", async () => {
    const config = writeConfig("audit");
    const dir = join(root, "audit");
    const init = await hangar(["init", "--config", config, "--json"]);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ publicKey: join(dir, "logs", "audit-signing.pub"), privateKey: join(dir, "logs", "audit-signing.key"), replaced: false });

    const store = AuditStore.open({ path: join(dir, "logs", "audit.db"), signer: loadSigner(join(dir, "logs", "audit-signing.key")), anchorPath: join(dir, "logs", "audit.anchor.json"), timer: false });
    store.append(toolCall(1));
    store.close();

    const verify = await hangar(["audit", "verify", "--json"], { env: { HANGAR_CONFIG: config } });
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ db: join(dir, "logs", "audit.db"), ok: true });
    const query = await hangar(["--config", config, "audit", "query", "--json"]);
    expect(query.code, query.stderr).toBe(0);
    expect(query.stdout).toContain("call-1");
    const exported = await hangar(["audit", "export", "--format", "jsonl", "--config", config]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("call-1");
  });
});

describe("paths in hangar.yaml", () => {
  it("resolve relative to the file, not the working directory", async () => {
    const dir = join(root, "relative");
    mkdirSync(join(dir, "policies"), { recursive: true });
    writeFileSync(join(dir, "policies", "echo.yaml"), readFileSync("policies/everything.yaml", "utf8"));
    writeFileSync(join(dir, "hangar.yaml"), "servers: [policies/echo.yaml]\naudit: { path: a/audit.db }\nruntime:\n  upstreamCaFile: certs/ca.pem\ngateway: { stateDir: s/run, status: s/status.json, tokens: s/tokens.json, manifests: s/manifests }\n");
    const loaded = await loadHangarConfig(join(dir, "hangar.yaml"));
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
    const { config } = loaded;
    expect(config.servers[0]?.policyFile).toBe(join(dir, "policies", "echo.yaml"));
    expect(config.auditPath).toBe(join(dir, "a", "audit.db"));
    expect(config.paths).toEqual({ manifests: join(dir, "s", "manifests"), status: join(dir, "s", "status.json"), tokens: join(dir, "s", "tokens.json"), stateDir: join(dir, "s", "run") });
    expect(config.runtime.runtime.upstreamCaFile).toBe(join(dir, "certs", "ca.pem"));
  });
});
