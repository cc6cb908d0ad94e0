import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectorTerms } from "../../src/docker/labels.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import { DockerTestEnv, ROOT } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * Two MCP clients (say Claude Desktop and Cursor) configured with the same policy: each
 * spawns its own `hangar run policies/everything.yaml`, both running at once. Each must get a
 * sandbox of its own (run id, names, subnet), both must answer tools, and each must tear its
 * own sandbox down when its client closes stdin, leaving nothing behind.
 */

type ContentItem = { type: string; text?: string };

let env: DockerTestEnv;
let config: string;
const sessions: HangarRunSession[] = [];

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const sidecarImage = await ensureCliSidecarImage(env.engine);
  const egress = await env.egressNetwork();
  config = await writeRunConfig(join(await env.stateRoot(), "hangar.yaml"), { egress, sidecarImage });
}, 600_000);

afterAll(async () => {
  for (const session of sessions) await session[Symbol.asyncDispose]();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

const start = async (events: string): Promise<HangarRunSession> =>
  HangarRunSession.start({ engine: env.engine, policy: join(ROOT, "policies/everything.yaml"), config, events: join(await env.stateRoot(), events) });

/** The sidecar's lifecycle and the runtime's actions, in the order the --events file got them. */
async function lifecycle(events: string): Promise<string[]> {
  const text = await readFile(join(await env.stateRoot(), events), "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as SandboxEvent)
    .flatMap((e) => (e.type === "lifecycle" || e.type === "runtime" ? [`${e.type} ${e.action}`] : []));
}

describe("two clients of one policy at once", () => {
  it("each gets its own sandbox, both call echo, and each teardown leaves nothing", async () => {
    // The second client starts while the first one's sandbox is up, as when Cursor opens
    // with Claude Desktop already running (two starts in the same instant race past any check).
    const a = await start("a.jsonl");
    sessions.push(a);
    const b = await start("b.jsonl");
    sessions.push(b);

    const [boxA, boxB] = await Promise.all([a.sandbox(), b.sandbox()]);
    expect([boxA.server, boxB.server]).toEqual(["everything", "everything"]);
    expect(boxA.run).not.toBe(boxB.run);
    // Own internal network each, on different subnets.
    const subnetOf = async (run: string): Promise<string[]> =>
      (await env.engine.listNetworks({ labels: selectorTerms({ run, role: "network" }) })).flatMap((n) => n.subnets.map((s) => s.subnet));
    const [subnetsA, subnetsB] = await Promise.all([subnetOf(boxA.run), subnetOf(boxB.run)]);
    expect(subnetsA).toHaveLength(1);
    expect(subnetsB).toHaveLength(1);
    expect(subnetsA[0]).not.toBe(subnetsB[0]);

    const [echoA, echoB] = await Promise.all([
      a.client.callTool({ name: "echo", arguments: { message: "from client A" } }),
      b.client.callTool({ name: "echo", arguments: { message: "from client B" } }),
    ]);
    expect((echoA.content as ContentItem[])[0]?.text).toContain("from client A");
    expect((echoB.content as ContentItem[])[0]?.text).toContain("from client B");

    // One goes away; the other keeps working.
    const first = await a.closeStdinAndTime();
    expect(first.exit).toEqual({ code: 0, signal: null });
    expect(await a.remaining()).toEqual([]);
    const again = await b.client.callTool({ name: "echo", arguments: { message: "B still here" } });
    expect((again.content as ContentItem[])[0]?.text).toContain("B still here");

    const second = await b.closeStdinAndTime();
    expect(second.exit).toEqual({ code: 0, signal: null });
    expect(await b.remaining()).toEqual([]);
    // Quick, and nothing lost: each sidecar's drain reached its --events file before the end.
    for (const file of ["a.jsonl", "b.jsonl"]) {
      expect(await lifecycle(file)).toEqual(expect.arrayContaining(["lifecycle started", "lifecycle closing", "lifecycle closed", "runtime sandbox-stopped"]));
    }
    // A timing on a shared machine is reported, not asserted.
    console.log(`hangar run teardown after stdin closed: ${first.ms.toFixed(0)} ms and ${second.ms.toFixed(0)} ms`);
  });
});
