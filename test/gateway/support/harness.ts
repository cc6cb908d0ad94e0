import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { stringify } from "yaml";
import { loadHangarConfigOrThrow, type HangarConfig } from "../../../src/gateway/config/load-hangar-config.js";
import { createSessionServer } from "../../../src/gateway/mcp-endpoint.js";
import { openGateway, type OpenGateway } from "../../../src/gateway/open-gateway.js";
import type { ServerLauncher } from "../../../src/gateway/server-launcher.js";
import { LocalProcessLauncher } from "../../../src/gateway/local-process-launcher.js";
import { silentLogger } from "../../../src/log.js";
import { hangar } from "../../cli/capture-io.js";
import { fixtureServerCommand } from "./fixture-server.js";

/** A temporary project folder: hangar.yaml, policies, .hangar/. Removed on dispose. */
export interface Project {
  readonly dir: string;
  readonly config: string;
  policy(name: string, options?: PolicyOptions): Promise<string>;
  writeConfig(config: Record<string, unknown>): string;
  [Symbol.dispose](): void;
}

export interface PolicyOptions {
  readonly env?: Record<string, string>;
  readonly secrets?: readonly string[];
  readonly mode?: "enforcing" | "observing";
  readonly tools?: { allow?: string[]; deny?: string[]; rateLimit?: { perMinute: number } };
}

export function project(): Project {
  const dir = mkdtempSync(join(tmpdir(), "hangar-gateway-test-"));
  mkdirSync(join(dir, "policies"));
  const config = join(dir, "hangar.yaml");
  return {
    dir,
    config,
    async policy(name, options = {}) {
      const command = await fixtureServerCommand();
      const policy = {
        version: 1,
        name,
        server: { build: { context: "." }, command, env: { FIXTURE_NAME: name, ...options.env }, ...(options.secrets !== undefined ? { secrets: options.secrets } : {}) },
        egress: { mode: options.mode ?? "enforcing" },
        ...(options.tools !== undefined ? { tools: options.tools } : {}),
      };
      const file = join(dir, "policies", `${name}.yaml`);
      writeFileSync(file, stringify(policy));
      return file;
    },
    writeConfig(data) {
      writeFileSync(config, stringify(data));
      return config;
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Fast lifecycle settings for tests; override per test. */
export const FAST_GATEWAY = {
  startTimeoutMs: 15_000,
  callTimeoutMs: 15_000,
  healthIntervalMs: 0,
  pingTimeoutMs: 2_000,
  idleTimeoutMs: 0,
  breaker: { failureThreshold: 3, coolDownMs: 60_000 },
  restart: { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: 5 },
};

/** `hangar approve request` + `grant` for each policy, through the real CLI. */
export async function approve(configPath: string, policyFiles: readonly string[], by = "security-lead"): Promise<string[]> {
  const ids: string[] = [];
  for (const file of policyFiles) {
    const requested = await hangar(["approve", "request", file, "--config", configPath]);
    if (requested.code !== 0) throw new Error(`approve request failed: ${requested.stderr}`);
    const id = /^(apr-[0-9a-f]{8}):/.exec(requested.stdout)?.[1];
    if (id === undefined) throw new Error(`no approval id in ${requested.stdout}`);
    const granted = await hangar(["approve", "grant", id, "--by", by, "--config", configPath]);
    if (granted.code !== 0) throw new Error(`approve grant failed: ${granted.stderr}`);
    ids.push(id);
  }
  return ids;
}

export async function loadConfig(path: string): Promise<HangarConfig> {
  return (await loadHangarConfigOrThrow(path)).config;
}

export async function openTestGateway(configPath: string, options: { launcher?: ServerLauncher; secretSource?: Record<string, string | undefined>; random?: () => number } = {}): Promise<OpenGateway & AsyncDisposable> {
  const config = await loadConfig(configPath);
  const opened = await openGateway({
    config,
    launcher: options.launcher ?? new LocalProcessLauncher(),
    logger: silentLogger(),
    version: "0.0.0-test",
    secretSource: options.secretSource ?? {},
    random: options.random ?? (() => 0.5),
  });
  return Object.assign(opened, { [Symbol.asyncDispose]: () => opened.close() });
}

/** An SDK client talking to the gateway in-process, as `identity`. */
export async function connectClient(opened: OpenGateway, identity: string, session = `session-${identity}`): Promise<Client & AsyncDisposable> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = createSessionServer(opened.gateway, () => ({ identity, session }), { version: "0.0.0-test", logger: silentLogger() });
  await server.connect(serverSide);
  const client = new Client({ name: "test-client", version: "1.0.0" });
  await client.connect(clientSide);
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.close() });
}

export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? "").join("");
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
