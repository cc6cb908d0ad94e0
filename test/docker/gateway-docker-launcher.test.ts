import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Policy } from "../../src/core/policy/policy-schema.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { DockerSandboxLauncher } from "../../src/gateway/docker-launcher.js";
import type { SandboxImages } from "../../src/gateway/image-preparer.js";
import type { LaunchOptions, UpstreamEvent } from "../../src/gateway/server-launcher.js";
import type { ServerImage } from "../../src/images/build-progress.js";
import { NpmCliClient } from "../../src/images/npm-client.js";
import { NpmStager } from "../../src/images/npm-stager.js";
import { ServerImageBuilder } from "../../src/images/server-image-builder.js";
import { loadPolicyFile } from "../../src/policy/index.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import { ServerLogStore } from "../../src/runtime/server-log-store.js";
import { DockerTestEnv, ROOT, waitFor } from "./support/docker-test-env.js";

/**
 * The launcher's contract on real sandboxes (server-everything from npm): MCP over the
 * attached stdio, events from the sandbox's first moment, `exited` for every way a
 * sandbox ends, an idempotent stop, the AbortSignal, and close().
 */

let env: DockerTestEnv;
let image: ServerImage;
let reference: Policy;
let sandboxes: Sandbox;
const images: SandboxImages = { ensure: async () => ({ server: image }) };

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const file = join(ROOT, "policies/everything.yaml");
  const loaded = await loadPolicyFile(file);
  if (!loaded.ok) throw new Error("policies/everything.yaml does not load");
  reference = loaded.policy;
  image = await new ServerImageBuilder(env.engine, ROOT, new NpmStager(new NpmCliClient(), join(ROOT, ".stage/npm"))).build({ policy: reference, policyFile: file });
  // Every sandbox carries this file's run label, so env.cleanup() removes whatever a failure leaves.
  sandboxes = new Sandbox({ engine: env.engine, logger: env.logger, newRunId: () => env.run });
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

async function serverPolicy(stem: string): Promise<{ policy: Policy; file: string }> {
  return env.policy(`${stem}-${env.run}`, { server: reference.server, egress: { mode: "enforcing", allow: [] } });
}

async function options(file: string, extra: Partial<LaunchOptions> & { maxRestarts?: number } = {}): Promise<LaunchOptions> {
  const { maxRestarts, ...rest } = extra;
  return {
    policyFile: file,
    runtime: await env.runtimeConfig(maxRestarts !== undefined ? { maxRestarts } : {}),
    mode: "enforcing",
    secretSource: {},
    stateDir: await env.stateRoot(),
    logger: env.logger,
    ...rest,
  };
}

const objectsOf = async (server: string): Promise<string[]> => [
  ...(await env.engine.listContainers({ labels: selectorTerms({ server }) })).map((c) => `container ${c.name}`),
  ...(await env.engine.listNetworks({ labels: selectorTerms({ server }) })).map((n) => `network ${n.name}`),
];

const serverContainer = async (server: string): Promise<string> => {
  const [c] = await env.engine.listContainers({ labels: selectorTerms({ server, role: "server" }) });
  if (c === undefined) throw new Error(`no server container of ${server}`);
  return c.id;
};

describe("DockerSandboxLauncher", () => {
  it("speaks MCP over the sandbox's stdio; its events begin with the sandbox's own; stop() is idempotent and ends exited and events", async () => {
    const launcher = new DockerSandboxLauncher({ images, sandboxes });
    const { policy, file } = await serverPolicy("basic");
    const launched = await launcher.launch(policy, await options(file));
    expect(launcher.sandboxed).toBe(true);
    expect(launched.description).toMatch(new RegExp(`^sandbox ${policy.name} run ${env.run} \\(sidecar 10\\.`));
    const client = new Client({ name: "launcher-test", version: "1.0.0" });
    await client.connect(launched.transport);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
    await client.close();

    await Promise.all([launched.stop(), launched.stop()]);
    await launched.stop();
    expect(await launched.exited).toMatchObject({ reason: "stopped" });
    const events: UpstreamEvent[] = [];
    for await (const event of launched.events) events.push(event);
    const names = events.map((e) => `${e.type}:${"action" in e ? e.action : e.phase}`);
    // Read only now, yet nothing was missed: the sidecar's start came before launch() returned.
    expect(names.slice(0, 2)).toEqual(["lifecycle:started", "runtime:sandbox-started"]);
    expect(names.at(-1)).toBe("runtime:sandbox-stopped");
    expect(await objectsOf(policy.name)).toEqual([]);
    // Its stderr is kept for `hangar logs` under the state directory, after the sandbox is gone.
    const store = new ServerLogStore({ dir: join(await env.stateRoot(), "logs") });
    const [entry] = (await store.list()).filter((e) => e.server === policy.name);
    expect(entry).toBeDefined();
    expect(await store.read(entry!)).toMatch(/Starting default \(STDIO\) server/);
  });

  it("ends `exited` with the exit code of a killed server; the next launch of that server first removes the dead sandbox", async () => {
    const launcher = new DockerSandboxLauncher({ images, sandboxes });
    const { policy, file } = await serverPolicy("crash");
    const first = await launcher.launch(policy, await options(file));
    await env.engine.killContainer(await serverContainer(policy.name), "SIGKILL");
    expect(await first.exited).toMatchObject({ code: 137, reason: "exited" });

    // Nobody stopped the dead one yet: the runtime would refuse a second sandbox of the same server.
    const second = await launcher.launch(policy, await options(file));
    const client = new Client({ name: "launcher-test", version: "1.0.0" });
    await client.connect(second.transport);
    expect((await client.callTool({ name: "echo", arguments: { message: "second life" } })).content).toEqual([expect.objectContaining({ text: expect.stringContaining("second life") })]);
    await client.close();
    await second.stop();
    expect(await objectsOf(policy.name)).toEqual([]);
  });

  it("honours its AbortSignal, before and during the sandbox's start, leaving nothing behind", async () => {
    const launcher = new DockerSandboxLauncher({ images, sandboxes });
    const { policy, file } = await serverPolicy("abort");
    const early = new AbortController();
    early.abort(new Error("gave up early"));
    await expect(launcher.launch(policy, await options(file, { signal: early.signal }))).rejects.toThrow("gave up early");

    const late = new AbortController();
    const launching = launcher.launch(policy, await options(file, { signal: late.signal }));
    // Mid-start: its network exists, its containers are on the way.
    await waitFor(async () => ((await env.engine.listNetworks({ labels: selectorTerms({ server: policy.name }) })).length > 0 ? true : undefined), 30_000, 20);
    late.abort(new Error("start timeout"));
    await expect(launching).rejects.toThrow("start timeout");
    expect(await objectsOf(policy.name)).toEqual([]);
  });

  it("ends the launch when its sidecar is given up, so the gateway restarts the whole sandbox", async () => {
    const launcher = new DockerSandboxLauncher({ images, sandboxes });
    const { policy, file } = await serverPolicy("nosidecar");
    const launched = await launcher.launch(policy, await options(file, { maxRestarts: 0 }));
    const [sidecar] = await env.engine.listContainers({ labels: selectorTerms({ server: policy.name, role: "sidecar" }) });
    await env.engine.killContainer(sidecar!.id, "SIGKILL");
    expect((await launched.exited).reason).toMatch(/sidecar is gone for good/);
    await launched.stop();
    const actions = [];
    for await (const e of launched.events) if (e.type === "runtime") actions.push(e.action);
    expect(actions).toEqual(expect.arrayContaining(["sidecar-exited", "sidecar-given-up"]));
    expect(await objectsOf(policy.name)).toEqual([]);
  });

  it("close() stops every sandbox it runs and refuses later launches", async () => {
    const launcher = new DockerSandboxLauncher({ images, sandboxes });
    const a = await serverPolicy("close-a");
    const b = await serverPolicy("close-b");
    const [one, two] = await Promise.all([launcher.launch(a.policy, await options(a.file)), launcher.launch(b.policy, await options(b.file))]);
    await launcher.close();
    await launcher.close();
    expect(await one!.exited).toMatchObject({ reason: "stopped" });
    expect(await two!.exited).toMatchObject({ reason: "stopped" });
    expect([...(await objectsOf(a.policy.name)), ...(await objectsOf(b.policy.name))]).toEqual([]);
    await expect(launcher.launch(a.policy, await options(a.file))).rejects.toMatchObject({ code: "HANGAR_CLOSED" });
  });
});
