import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent, SidecarEvent } from "../../../src/core/events.js";
import { silentLogger } from "../../../src/log.js";
import type { OriginalDestination, OriginalDestinationReader } from "../../../src/sidecar/catch-all/original-destination.js";
import { Sidecar } from "../../../src/sidecar/sidecar.js";
import { SidecarConfigSchema } from "../../../src/sidecar/sidecar-config.js";
import { FakeDnsServer } from "../../support/fake-dns.js";

/**
 * The catch-all listener in the whole sidecar, on loopback. The kernel's redirect is the
 * Docker test's business (test/docker/every-attempt.test.ts); here a reader stands in for
 * SO_ORIGINAL_DST and says where each connection "was going".
 */
const SIDECAR = "127.0.0.1";
const ANSWER = "127.0.0.2";
const DECLARED_IP = "127.0.0.3";
let dir: string;
let dns: FakeDnsServer;
let upstream: Server;
let upstreamPort = 0;
let upstreamHits = 0;
const running: Sidecar[] = [];

class QueuedDestinations implements OriginalDestinationReader {
  readonly queue: OriginalDestination[] = [];
  originalDst(): OriginalDestination {
    const next = this.queue.shift();
    if (next === undefined) throw new Error("no original destination queued");
    return next;
  }
}

async function start(capture = false): Promise<{ events: SidecarEvent[]; port: number; reader: QueuedDestinations }> {
  const events: SidecarEvent[] = [];
  const reader = new QueuedDestinations();
  const sidecar = await Sidecar.start({
    config: SidecarConfigSchema.parse({
      policyFile: join(dir, "policy.yaml"),
      answerAddress: ANSWER,
      listen: { host: SIDECAR, dnsPort: 0, proxyPort: 0, transparentPorts: { "80": 0 } },
      catchAll: { port: 0 },
      ...(capture ? { capture: true } : {}),
      peekTimeoutMs: 300,
    }),
    events: { emit: (e) => events.push(e) },
    logger: silentLogger(),
    upstreams: [{ host: "127.0.0.1", port: dns.port }],
    originalDestination: reader,
  });
  running.push(sidecar);
  return { events, port: sidecar.addresses().catchAll!, reader };
}

/** Connects to the catch-all as if to `dst`, sends `data`, and reports what came back and how it ended. */
function attempt(port: number, reader: QueuedDestinations, dst: OriginalDestination, data: string): Promise<{ reply: string; ms: number; error?: string }> {
  reader.queue.push(dst);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket: Socket = connect(port, SIDECAR, () => socket.write(data));
    let reply = "";
    let error: string | undefined;
    socket.on("data", (b) => (reply += b.toString("latin1")));
    socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on("close", () => resolve({ reply, ms: Date.now() - started, ...(error !== undefined ? { error } : {}) }));
  });
}

const egressTo = (events: SidecarEvent[], ip: string, port: number): EgressEvent[] =>
  events.filter((e): e is EgressEvent => e.type === "egress" && e.ip === ip && e.port === port);

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-catch-all-"));
  upstream = createServer((s) => {
    upstreamHits += 1;
    s.on("data", (b) => s.end(`echo:${b.toString()}`));
  });
  await new Promise<void>((r) => upstream.listen(0, DECLARED_IP, r));
  upstreamPort = (upstream.address() as { port: number }).port;
  await writeFile(
    join(dir, "policy.yaml"),
    `version: 1
name: catcher
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
    - host: "api.test"
      ports: [80]
    - cidr: "${DECLARED_IP}/32"
      ports: [${upstreamPort}]
`,
  );
  dns = await FakeDnsServer.start("127.0.0.1");
});

afterEach(async () => {
  for (const s of running.splice(0)) await s.destroy();
});

afterAll(async () => {
  await new Promise((r) => upstream.close(r));
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the catch-all listener", () => {
  it("refuses the metadata address with an event naming it, and resets at once", async () => {
    const { events, port, reader } = await start();
    const out = await attempt(port, reader, { address: "169.254.169.254", port: 80 }, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(out.reply).toBe("");
    expect(out.ms).toBeLessThan(1000);
    await until(() => egressTo(events, "169.254.169.254", 80).length > 0);
    const [event] = egressTo(events, "169.254.169.254", 80);
    expect(event).toMatchObject({ verdict: "block", path: "transparent", protocol: "tcp" });
    expect(event!.reasons).toContain("destination-metadata");
  });

  it("refuses an undeclared raw IP on any port, and our upstream hears nothing", async () => {
    const { events, port, reader } = await start();
    const before = upstreamHits;
    await attempt(port, reader, { address: DECLARED_IP, port: upstreamPort + 1 }, "hello");
    await attempt(port, reader, { address: "10.0.0.1", port: 4444 }, "hello");
    await until(() => egressTo(events, "10.0.0.1", 4444).length > 0);
    expect(egressTo(events, DECLARED_IP, upstreamPort + 1)[0]).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["undeclared-ip"]) });
    expect(egressTo(events, "10.0.0.1", 4444)[0]).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["undeclared-ip"]) });
    expect(upstreamHits).toBe(before);
  });

  it("splices a declared CIDR destination to that very address and port", async () => {
    const { events, port, reader } = await start();
    const before = upstreamHits;
    const out = await attempt(port, reader, { address: DECLARED_IP, port: upstreamPort }, "ping");
    expect(out.reply).toBe("echo:ping");
    expect(upstreamHits).toBe(before + 1);
    await until(() => egressTo(events, DECLARED_IP, upstreamPort).length >= 2);
    expect(egressTo(events, DECLARED_IP, upstreamPort).map((e) => [e.phase, e.verdict, e.reasons])).toEqual([
      ["decide", "allow", ["declared-cidr"]],
      ["close", "allow", ["declared-cidr"]],
    ]);
  });

  it("hands the sidecar's own address on an undeclared port to the transparent path, which decides by Host", async () => {
    const { events, port, reader } = await start();
    const out = await attempt(port, reader, { address: ANSWER, port: 4444 }, "GET / HTTP/1.1\r\nHost: c2.attacker.test:4444\r\n\r\n");
    expect(out.reply).toMatch(/^HTTP\/1\.1 403/);
    await until(() => events.some((e) => e.type === "egress" && e.port === 4444));
    const event = events.find((e): e is EgressEvent => e.type === "egress" && e.port === 4444);
    expect(event).toMatchObject({ verdict: "block", name: "c2.attacker.test" });
    expect(event!.reasons).toContain("undeclared-host");
  });

  it("in capture, records an attempt on any port with its name, and refuses it", async () => {
    const { events, port, reader } = await start(true);
    await attempt(port, reader, { address: ANSWER, port: 4444 }, "GET /x HTTP/1.1\r\nHost: c2.attacker.test:4444\r\n\r\n");
    await attempt(port, reader, { address: "10.0.0.1", port: 5555 }, "x");
    await until(() => egressTo(events, "10.0.0.1", 5555).length > 0);
    const named = events.find((e): e is EgressEvent => e.type === "egress" && e.port === 4444);
    expect(named).toMatchObject({ verdict: "block", name: "c2.attacker.test" });
    expect(named!.reasons).toContain("capture");
    expect(egressTo(events, "10.0.0.1", 5555)[0]!.reasons).toContain("capture");
  });

  it("refuses, with an event, a connection whose original destination cannot be read", async () => {
    const { events, port, reader } = await start();
    const out = await new Promise<number>((resolve) => {
      const started = Date.now();
      const s = connect(port, SIDECAR, () => s.write("x"));
      s.on("error", () => undefined);
      s.on("close", () => resolve(Date.now() - started));
    });
    expect(reader.queue).toHaveLength(0);
    expect(out).toBeLessThan(1000);
    await until(() => events.some((e) => e.type === "egress" && e.error?.startsWith("original destination unknown") === true));
    expect(events.find((e) => e.type === "egress")).toMatchObject({ verdict: "block" });
  });
});
