import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Dockerode from "dockerode";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NpmCliClient } from "../../src/images/npm-client.js";
import { NpmStager } from "../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../src/images/server-image-builder.js";
import { loadPolicyFile } from "../../src/policy/index.js";
import { DockerTestEnv, ROOT, waitFor } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * `hangar run` applies the policy's `tools` section as `hangar serve` does: the real CLI
 * process, driven by the MCP SDK's stdio client, around the real server-everything in its
 * sandbox. The policy denies one of its tools and allows two calls a minute. No egress is
 * declared, so the sidecar never looks a name up.
 */
type ContentItem = { type: string; text?: string };

let env: DockerTestEnv;
let session: HangarRunSession;
let name: string;
let imageTag: string | undefined;

/** policies/everything.yaml under this file's own name (a concurrent run of it must not collide), with a tools section. */
async function writePolicy(dir: string): Promise<string> {
  const text = (await readFile(join(ROOT, "policies/everything.yaml"), "utf8")).replace(/^name: .*$/m, `name: ${name}`).replace(/^egress:[\s\S]*$/m, "");
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `${text}\ntools:\n  deny: ["get-sum"]\n  rateLimit: { perMinute: 2 }\n`);
  return file;
}

/** The reference server's image under this name's tag (the content hash ignores the name), so the CLI finds it built. */
async function preTagServerImage(): Promise<string> {
  const policyFile = join(ROOT, "policies/everything.yaml");
  const loaded = await loadPolicyFile(policyFile);
  if (!loaded.ok) throw new Error("policies/everything.yaml does not load");
  const image = await new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), join(ROOT, ".stage/npm"))).build({ policy: loaded.policy, policyFile });
  const tag = (image.contentHash ?? "").slice(0, 12);
  await new Dockerode().getImage(image.id).tag({ repo: `hangar/server-${name}`, tag });
  return `hangar/server-${name}:${tag}`;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  name = `everything-${env.run}`;
  const sidecarImage = await ensureCliSidecarImage(env.engine);
  imageTag = await preTagServerImage();
  const state = await env.stateRoot();
  const config = await writeRunConfig(join(state, "hangar.yaml"), { egress: await env.egressNetwork(), sidecarImage });
  session = await HangarRunSession.start({ engine: env.engine, policy: await writePolicy(state), config });
}, 600_000);

afterAll(async () => {
  await session?.[Symbol.asyncDispose]();
  await env?.cleanup();
  if (imageTag !== undefined) await env.engine.removeImage(imageTag, { force: false }).catch(() => undefined);
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("hangar run with tools: { deny: [get-sum], rateLimit: { perMinute: 2 } }", () => {
  it("leaves the denied tool out of tools/list", async () => {
    const names = (await session.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["echo", "gzip-file-as-resource"]));
    expect(names).not.toContain("get-sum");
  });

  it("answers a call to the denied tool with an MCP error naming the rule; the server never runs it", async () => {
    const err = await session.client.callTool({ name: "get-sum", arguments: { a: 40, b: 2 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err).toMatchObject({ code: -32010, data: { code: "HANGAR_GATEWAY_DENIED", permission: `${name}:tools.deny "get-sum"`, server: name, tool: "get-sum" } });
    expect((err as Error).message).toContain(`tool "get-sum" of server "${name}" is refused by its policy (tools.deny "get-sum")`);
    // The CLI says so on stderr, which may arrive after the answer on stdout.
    const said = await waitFor(async () => session.stderrLines.find((l) => l.startsWith('hangar: tools/call "get-sum" refused: ')));
    expect(said).toContain('tools.deny "get-sum"');
  });

  it("refuses a call whose arguments carry a credential (ENFORCING), naming the detector, never the value", async () => {
    const key = ["-----BEGIN", "PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END", "PRIVATE KEY-----"].join(" ");
    const err = await session.client.callTool({ name: "echo", arguments: { message: key } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err).toMatchObject({ code: -32016, data: { code: "HANGAR_GATEWAY_ARGUMENT_REFUSED" } });
    expect(JSON.stringify(err)).not.toContain("MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA");
  });

  it("lets allowed calls through until tools.rateLimit, then answers with the rate-limit error", async () => {
    const texts: string[] = [];
    for (const message of ["one", "two"]) {
      const result = await session.client.callTool({ name: "echo", arguments: { message } });
      texts.push((result.content as ContentItem[])[0]?.text ?? "");
    }
    expect(texts).toEqual([expect.stringContaining("one"), expect.stringContaining("two")]);
    const err = await session.client.callTool({ name: "echo", arguments: { message: "three" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err).toMatchObject({ code: -32011, data: { code: "HANGAR_GATEWAY_RATE_LIMITED", permission: "tools.rateLimit", server: name } });
    expect((err as Error).message).toContain(`server "${name}" allows 2 tool calls per minute (tools.rateLimit.perMinute)`);
  });
});
