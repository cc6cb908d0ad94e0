import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hangar } from "../cli/capture-io.js";
import { eventually } from "../gateway/support/harness.js";
import { DockerTestEnv, ROOT } from "./support/docker-test-env.js";
import { DATA_FILE_TEXT, openGatewayProject, startServeHttp, type GatewayProject, type ServeHttp } from "./support/gateway-project.js";

/**
 * The MCP Inspector's CLI mode (`@modelcontextprotocol/inspector --cli`, a devDependency)
 * as a second real client of `hangar serve`: over stdio it spawns the gateway itself, one
 * gateway per invocation, as an MCP client config would; over HTTP it talks to a running
 * one with a bearer token. Both sandboxed reference servers answer through it.
 */

const INSPECTOR = join(ROOT, "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
const run = promisify(execFile);

let env: DockerTestEnv;
let p: GatewayProject;
let E: string;
let F: string;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  p = await openGatewayProject(env);
  E = p.everything;
  F = p.filesystem;
}, 600_000);

afterAll(async () => {
  const left = await p?.cleanup();
  await env?.cleanup();
  expect(left).toEqual([]);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

/** `mcp-inspector --cli <options> -- <target...>`: its JSON answer. */
async function inspector(options: readonly string[], target: readonly string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [INSPECTOR, "--cli", ...options, "--", ...target], { env: p.childEnv(), timeout: 90_000, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

const toolNames = (answer: Record<string, unknown>): string[] => (answer["tools"] as { name: string }[]).map((t) => t.name);
const text = (answer: Record<string, unknown>): string => (answer["content"] as { text?: string }[]).map((c) => c.text ?? "").join("");

describe("the MCP Inspector CLI over stdio (it spawns hangar serve --stdio)", () => {
  /** The gateway it spawned has stopped and removed its sandboxes, so the next one may start them. */
  const gatewayGone = (): Promise<unknown> =>
    eventually(async () => {
      const s = await p.status();
      return !s.running && s.status.stoppedAt !== undefined && (await p.leftovers()).length === 0 ? true : undefined;
    }, 20_000, "the spawned gateway to stop");
  // The spawned server gets the SDK's minimal environment plus -e values.
  const serve = (): string[] => [process.execPath, ...p.hangarArgs("serve", "--config", p.config, "--stdio")];
  const envArgs = (): string[] => ["-e", `HANGAR_SIDECAR_DIST=${p.childEnv()["HANGAR_SIDECAR_DIST"]}`, "-e", "HANGAR_LOG_LEVEL=warn"];

  it("lists the tools of both sandboxed servers", async () => {
    const listed = await inspector([...envArgs(), "--method", "tools/list"], serve());
    expect(toolNames(listed)).toEqual(expect.arrayContaining([`${E}__echo`, `${E}__get-sum`, `${F}__read_text_file`, `${F}__list_directory`]));
    await gatewayGone();
  });

  it("calls a tool of each", async () => {
    const echoed = await inspector([...envArgs(), "--method", "tools/call", "--tool-name", `${E}__echo`, "--tool-arg", "message=from the inspector"], serve());
    expect(text(echoed)).toContain("from the inspector");
    await gatewayGone();
    const read = await inspector([...envArgs(), "--method", "tools/call", "--tool-name", `${F}__read_text_file`, "--tool-arg", "path=/data/hello.txt"], serve());
    expect(text(read)).toBe(DATA_FILE_TEXT);
    await gatewayGone();
  });
});

describe("the MCP Inspector CLI over streamable HTTP with a bearer token", () => {
  let serve: ServeHttp;
  let auth: string;

  beforeAll(async () => {
    auth = `Authorization: Bearer ${(await hangar(["token", "create", "--identity", "inspector", "--config", p.config])).stdout.trim()}`;
    serve = await startServeHttp(p);
  }, 60_000);

  afterAll(async () => {
    if (serve !== undefined) expect(await serve.stop()).toBe(0);
    expect(await p.leftovers()).toEqual([]);
  }, 30_000);

  it("lists and calls the tools of both sandboxed servers", async () => {
    const http = ["--transport", "http", "--header", auth];
    expect(toolNames(await inspector([...http, "--method", "tools/list"], [serve.url]))).toEqual(expect.arrayContaining([`${E}__echo`, `${F}__read_text_file`]));
    expect(text(await inspector([...http, "--method", "tools/call", "--tool-name", `${E}__get-sum`, "--tool-arg", "a=40", "b=2"], [serve.url]))).toContain("42");
    expect(text(await inspector([...http, "--method", "tools/call", "--tool-name", `${F}__read_text_file`, "--tool-arg", "path=/data/hello.txt"], [serve.url]))).toBe(DATA_FILE_TEXT);
  });

  it("gets nowhere without the token", async () => {
    const failed = await inspector(["--transport", "http", "--method", "tools/list"], [serve.url]).then(
      () => undefined,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    // The 401 sends it to OAuth, which a non-interactive run refuses: exit 3, auth_required.
    expect(failed?.code).toBe(3);
    expect(`${failed?.stdout ?? ""}${failed?.stderr ?? ""}`).toMatch(/auth_required/);
  });
});
