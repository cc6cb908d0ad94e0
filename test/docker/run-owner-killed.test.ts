import { join } from "node:path";
import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import { DockerTestEnv, FIXTURES_IMAGE, ROOT, waitFor } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * A `hangar run` that dies without cleaning up (SIGKILL: by its client after a slow teardown,
 * by the OOM killer, by a user) must not leave its sandbox running. Its sandbox stops and is
 * removed, containers and network, within seconds, with no other Hangar command run. Only
 * Docker is looked at here; the session's dispose prunes the run whatever happens.
 */

const GONE_WITHIN_MS = 10_000;

/**
 * An MCP server that ignores EOF on stdin and SIGTERM: it answers initialize and tools/list
 * and would run forever. Teardown must not wait for it.
 */
const STUBBORN_SERVER = `
process.on("SIGTERM", () => undefined);
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  const result = m.method === "initialize"
    ? { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "stubborn", version: "1.0.0" } }
    : m.method === "tools/list" ? { tools: [] } : {};
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }) + "\\n");
});
setInterval(() => undefined, 1 << 30);
`;

let env: DockerTestEnv;
let config: string;
let session: HangarRunSession | undefined;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const sidecarImage = await ensureCliSidecarImage(env.engine);
  const egress = await env.egressNetwork();
  config = await writeRunConfig(join(await env.stateRoot(), "hangar.yaml"), { egress, sidecarImage });
}, 600_000);

afterEach(async () => {
  await session?.[Symbol.asyncDispose]();
  session = undefined;
}, 60_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

/** Starts a long tool call and resolves once the server has reported progress on it (wrapped: an async function would adopt the call itself). */
async function callInFlight(s: HangarRunSession): Promise<{ outcome: Promise<unknown> }> {
  let progressed: () => void = () => undefined;
  const progress = new Promise<void>((resolve) => (progressed = resolve));
  const call = s.client
    .callTool({ name: "trigger-long-running-operation", arguments: { duration: 60, steps: 120 } }, undefined, { onprogress: () => progressed(), timeout: 120_000 })
    .catch((err: unknown) => err);
  await progress;
  return { outcome: call };
}

async function goneWithin(s: HangarRunSession, ms: number): Promise<number> {
  const t0 = performance.now();
  await waitFor(async () => ((await s.remaining()).length === 0 ? true : undefined), ms, 100).catch(async () => {
    throw new Error(`still there ${ms} ms after the owner died: ${(await s.remaining()).join(", ")}`);
  });
  return performance.now() - t0;
}

describe("the client goes away", () => {
  it("closing stdin tears down even a server that ignores EOF and SIGTERM, and exits 0", async () => {
    const { file } = await env.policy("stubborn", { server: { image: { ref: FIXTURES_IMAGE }, command: ["node", "-e", STUBBORN_SERVER] } });
    session = await HangarRunSession.start({ engine: env.engine, policy: file, config });
    expect((await session.client.listTools()).tools).toEqual([]);
    const { exit, ms } = await session.closeStdinAndTime();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await session.remaining()).toEqual([]);
    // A timing on a shared machine is reported, not asserted.
    console.log(`hangar run teardown after stdin closed, server ignoring EOF and SIGTERM: ${ms.toFixed(0)} ms`);
  });
});

describe("the owner of a sandbox dies", () => {
  it("SIGKILL of hangar run mid-call: its containers and network are gone within 10 s", async () => {
    session = await HangarRunSession.start({ engine: env.engine, policy: join(ROOT, "policies/everything.yaml"), config });
    expect((await session.remaining()).length).toBeGreaterThanOrEqual(3); // sidecar, server, internal network
    const call = await callInFlight(session);

    session.kill("SIGKILL");
    expect(await session.waitForExit(5_000)).toEqual({ code: null, signal: "SIGKILL" });
    const ms = await goneWithin(session, GONE_WITHIN_MS);
    console.log(`sandbox of a SIGKILLed hangar run gone ${ms.toFixed(0)} ms after its exit`);
    // The client sees its connection close, not an answer.
    const outcome = await call.outcome;
    expect(outcome, JSON.stringify(outcome)).toBeInstanceOf(Error);
  });

  it("SIGKILL during teardown (stdin closed mid-call, then killed): nothing is left either", async () => {
    session = await HangarRunSession.start({ engine: env.engine, policy: join(ROOT, "policies/everything.yaml"), config });
    const call = await callInFlight(session);
    session.endStdin();
    await new Promise((r) => setTimeout(r, 150));
    session.kill("SIGKILL");
    await session.waitForExit(5_000);
    const ms = await goneWithin(session, GONE_WITHIN_MS);
    console.log(`sandbox of a hangar run SIGKILLed mid-teardown gone ${ms.toFixed(0)} ms after its exit`);
    expect(await call.outcome).toBeInstanceOf(Error);
  });
});
