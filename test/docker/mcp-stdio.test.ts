import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicySchema, type PolicyInput } from "../../src/core/policy/policy-schema.js";
import type { ServerImage } from "../../src/images/build-progress.js";
import { NpmCliClient } from "../../src/images/npm-client.js";
import { NpmStager } from "../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../src/images/server-image-builder.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { DockerTestEnv, realSidecarSourceExists, ROOT, upstreamCount, waitFor, type RunningFixture } from "./support/docker-test-env.js";
import { StreamTransport } from "./support/stream-transport.js";

/**
 * A real MCP server from npm (@modelcontextprotocol/server-everything), built into an image
 * by the npm path and driven over the sandbox's stdio bridge by the SDK's client. Its
 * gzip-file-as-resource tool fetches with Node's fetch, which ignores HTTP_PROXY: the
 * transparent path must carry it, and only to the declared upstream.
 */
const EVERYTHING = {
  package: "@modelcontextprotocol/server-everything",
  version: "2026.8.31",
  integrity: "sha512-5U3OZh8Xq0Li4nA26l6uNvV9/1suMDuWSn+NjLZIhzinhMY6N3A4DCrxVecBGPf2PsNFKTEv5krxGPRwzxc7jQ==",
};

let env: DockerTestEnv;
let image: ServerImage;
let allowed: RunningFixture;
let undeclared: RunningFixture;
let box: StartedSandbox;
let client: Client;
const events: SandboxEvent[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
  // Staged under .stage/npm (git-ignored) so later runs reuse the install and the image.
  const builder = new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), join(ROOT, ".stage/npm")));
  const input: PolicyInput = {
    version: 1,
    name: `everything-${env.run}`,
    server: { npm: EVERYTHING },
    egress: { mode: "enforcing", allow: [{ host: "allowed.test", ports: [8080] }] },
  };
  image = await builder.build({ policy: PolicySchema.parse({ ...input, name: "everything" }), policyFile: join(ROOT, "x.yaml") });
  allowed = await env.runFixture("upstream.mjs", { name: "allowed", env: { NAME: "allowed" }, aliases: ["allowed.test"] });
  undeclared = await env.runFixture("upstream.mjs", { name: "undeclared", env: { NAME: "undeclared" }, aliases: ["undeclared.test"] });
  const { policy, file } = await env.policy(input.name, { server: input.server, egress: input.egress });
  box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
    policy,
    policyFile: file,
    runtime: await env.runtimeConfig(),
    image,
    run: env.run,
    stateDir: await env.stateRoot(),
    onEvent: (e) => events.push(e),
  });
  client = new Client({ name: "hangar-test", version: "0.0.0" });
  await client.connect(new StreamTransport(box.stdin, box.stdout));
}, 600_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await box?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("a real MCP server over the sandbox's stdio", () => {
  it("completes initialize, tools/list and echo", async () => {
    expect(client.getServerVersion()?.name).toMatch(/everything/i);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "gzip-file-as-resource"]));
    const echo = await client.callTool({ name: "echo", arguments: { message: "through the sandbox" } });
    expect(JSON.stringify(echo.content)).toContain("through the sandbox");
  });

  it.runIf(realSidecarSourceExists())("fetches a declared upstream with Node's fetch (transparent path); an undeclared one receives nothing", async () => {
    const ok = await client.callTool({ name: "gzip-file-as-resource", arguments: { name: "a.gz", data: "http://allowed.test:8080/file", outputType: "resource" } });
    const blob = (ok.content as Array<{ resource?: { blob?: string } }>)[0]?.resource?.blob;
    expect(gunzipSync(Buffer.from(blob ?? "", "base64")).toString("utf8")).toBe("hello from allowed\n");
    expect(await upstreamCount(allowed.ip)).toBe(1);

    const denied = await client.callTool({ name: "gzip-file-as-resource", arguments: { name: "b.gz", data: "http://undeclared.test:8080/file", outputType: "resource" } });
    expect(denied.isError).toBe(true);
    expect(await upstreamCount(undeclared.ip)).toBe(0);
    await waitFor(async () => events.find((e) => e.type === "dns" && e.name === "undeclared.test" && e.verdict === "block"));
    expect(events.find((e) => e.type === "egress" && e.name === "allowed.test" && e.phase === "decide")).toMatchObject({ verdict: "allow", path: "transparent" });
  });
});
