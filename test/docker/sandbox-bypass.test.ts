import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ISOLATIONS, type Isolation } from "../../src/core/policy/policy-schema.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, upstreamCount, type RunningFixture } from "./support/docker-test-env.js";
import { runToCompletion } from "./support/run-to-completion.js";

/**
 * The container-level rows of the bypass catalogue, attacked from inside a real sandbox by
 * our attacker program. Every target is ours and running; each test also shows the target
 * answers from where a route does exist, so a pass means "blocked", not "nothing there".
 */
const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const ATTACKER_SERVER = { image: { ref: FIXTURES_IMAGE }, command: ["node", "/fixtures/attacker.mjs"] };

let env: DockerTestEnv;
let upstream: RunningFixture;
let resolver: RunningFixture;
let egressGateway: string;
let a: StartedSandbox;
let b: StartedSandbox;
let attacker: AttackerSession;
const host = { tcp: 0, udp: 0, port: 0 };
let tcpServer: Server;
let udpServer: UdpSocket;

/** Runs a probe from a plain container on the egress network: where a route exists. */
async function fromEgress(script: string): Promise<string> {
  const egress = await env.egressNetwork();
  const out = await runToCompletion(env, FIXTURES_IMAGE, ["node", "--input-type=module", "-e", script], undefined, egress.name);
  return out.stdout.trim();
}

// The whole catalogue runs once per isolation backend: the server under runc, then under
// gVisor (runsc); the sidecar is on runc in both.
describe.each(ISOLATIONS)("isolation %s", (isolation: Isolation) => {
  beforeAll(async () => {
    Object.assign(host, { tcp: 0, udp: 0, port: 0 });
    env = await DockerTestEnv.create();
    const egress = await env.egressNetwork();
    egressGateway = egress.subnets[0]!.gateway!;
    upstream = await env.runFixture("upstream.mjs", { name: "upstream", env: { NAME: "undeclared" } });
    resolver = await env.runFixture("dns-server.mjs", { name: "resolver", sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" } });

    // A host service bound to every address, as a careless developer's would be.
    tcpServer = createServer((socket) => {
      host.tcp += 1;
      socket.end("host says hi\n");
    });
    await new Promise<void>((resolve) => tcpServer.listen(0, "0.0.0.0", resolve));
    host.port = (tcpServer.address() as { port: number }).port;
    udpServer = createSocket("udp4");
    udpServer.on("message", (_msg, rinfo) => {
      host.udp += 1;
      udpServer.send("pong", rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => udpServer.bind(host.port, "0.0.0.0", resolve));

    const sandboxes = new Sandbox({ engine: env.engine, logger: env.logger });
    const runtime = await env.runtimeConfig();
    const start = async (name: string): Promise<StartedSandbox> => {
      // Through the policy's server.isolation: the per-policy override is what runs here.
      const { policy, file } = await env.policy(`${name}-${env.run}`, { server: { ...ATTACKER_SERVER, isolation } });
      return sandboxes.start({ policy, policyFile: file, runtime, image: ATTACKER, run: env.run, stateDir: await env.stateRoot() });
    };
    // Concurrent on purpose: two starts must not trip over each other's subnet.
    const [first, second] = await Promise.allSettled([start("a"), start("b")]);
    if (first.status === "fulfilled") a = first.value;
    if (second.status === "fulfilled") b = second.value;
    for (const s of [first, second]) if (s.status === "rejected") throw s.reason;
    attacker = new AttackerSession(a.stdin, a.stdout);
  }, 600_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    tcpServer?.close();
    udpServer?.close();
    await env?.cleanup();
    expect(await env.leftovers()).toEqual([]);
  }, 120_000);

  describe("bypass catalogue, from inside a sandbox", () => {
    it(`the server's system calls are answered by ${isolation === "gvisor" ? "gVisor's kernel, not the host's" : "the host's kernel"}`, async () => {
      const { version } = await attacker.send({ op: "kernel" });
      const hostVersion = (await readFile("/proc/version", "utf8")).trim();
      expect(typeof version).toBe("string");
      if (isolation === "gvisor") expect(version).not.toBe(hostVersion);
      else expect(version).toBe(hostVersion);
    });

    it("TCP to a raw IP literal (our running upstream) gets nowhere, and nothing arrives", async () => {
      expect(await upstreamCount(upstream.ip)).toBe(0);
      const [tcp, http] = await Promise.all([
        attacker.send({ op: "tcp", host: upstream.ip, port: 8080 }),
        attacker.send({ op: "http", url: `http://${upstream.ip}:8080/` }),
      ]);
      expect(tcp).toMatchObject({ ok: false });
      expect(http).toMatchObject({ ok: false });
      expect(await upstreamCount(upstream.ip)).toBe(0);
      // Control: from the egress network the upstream answers and counts.
      expect(await fromEgress(`const r = await fetch("http://${upstream.ip}:8080/"); console.log(r.status)`)).toBe("200");
      expect(await upstreamCount(upstream.ip)).toBe(1);
    });

    it("the host through the sandbox gateway address (TCP and UDP, listener on 0.0.0.0) is unreachable", async () => {
      const probes = [a.network.gateway, egressGateway].flatMap((target) => [
        attacker.send({ op: "tcp", host: target, port: host.port }),
        attacker.send({ op: "udp", host: target, port: host.port }),
      ]);
      for (const result of await Promise.all(probes)) expect(result).toMatchObject({ ok: false });
      expect(host).toMatchObject({ tcp: 0, udp: 0 });
      // Control: a container on a normal bridge does reach the host's listener through its gateway.
      const script = [
        `import net from "node:net";`,
        `const s = net.connect(${host.port}, "${egressGateway}");`,
        `s.on("data", (d) => { console.log(String(d).trim()); s.destroy(); });`,
        `s.on("error", (e) => console.log(e.code));`,
      ].join("\n");
      expect(await fromEgress(script)).toBe("host says hi");
      expect(host.tcp).toBe(1);
    });

    it("DNS straight to a resolver of ours (UDP and TCP 53) gets no answer, and the resolver hears nothing", async () => {
      const countQueries = async (): Promise<number> => upstreamCount(resolver.ip);
      expect(await countQueries()).toBe(0);
      const answers = await Promise.all(
        ["udp", "tcp"].map((transport) => attacker.send({ op: "dns", server: resolver.ip, name: "exfil.example.test", transport })),
      );
      for (const answer of answers) expect(answer).toMatchObject({ ok: false });
      expect(await countQueries()).toBe(0);
      // Control: from the egress network it answers.
      const script = [
        `import dgram from "node:dgram";`,
        `const s = dgram.createSocket("udp4");`,
        // A query for test. A, built by hand.
        `const q = Buffer.from("12340100000100000000000004746573740000010001", "hex");`,
        `s.on("message", (m) => { console.log("answers", m.readUInt16BE(6)); s.close(); });`,
        `s.send(q, 53, "${resolver.ip}");`,
      ].join("\n");
      expect(await fromEgress(script)).toBe("answers 1");
    });

    it("has no IPv6 at all: no addresses, and IPv6 sockets go nowhere", async () => {
      const r = await attacker.send({ op: "ipv6", port: host.port });
      expect(r["addresses"]).toBe("");
      // runc: the host kernel's IPv6 is switched off in the sandbox's namespace. gVisor's own
      // network stack takes over only the addresses that namespace has (IPv4), and has no such sysctl.
      expect(r["disabled"]).toBe(isolation === "runc" ? "1" : null);
      expect(r["tcp"]).toMatchObject({ ok: false });
      expect(r["udp"]).toMatchObject({ ok: false });
    });

    it("another sandbox and its sidecar are unreachable, on both of the sidecar's networks", async () => {
      const sidecarB = await env.engine.inspectContainer(b.sidecarId);
      const targets: Array<[string, number]> = [
        [b.sidecarAddress, 3128],
        [b.sidecarAddress, 53],
        [b.serverAddress, 8080],
        [sidecarB!.addresses[b.egressNetwork]!, 3128],
      ];
      const results = await Promise.all([
        ...targets.map(([target, port]) => attacker.send({ op: "tcp", host: target, port })),
        attacker.send({ op: "dns", server: b.sidecarAddress, name: "x.test", transport: "udp" }),
      ]);
      for (const result of results) expect(result).toMatchObject({ ok: false });
    });

    it("the sidecar serves only its sandbox: from the egress network its DNS and proxy do not answer", async () => {
      const sidecar = await env.engine.inspectContainer(a.sidecarId);
      const outside = sidecar!.addresses[a.egressNetwork]!;
      expect(outside).toBeDefined();
      const script = [
        `import dgram from "node:dgram"; import net from "node:net";`,
        `const tcp = (port) => new Promise((r) => { const s = net.connect(port, "${outside}"); s.on("connect", () => { s.destroy(); r("open"); }); s.on("error", (e) => r(e.code)); setTimeout(() => { s.destroy(); r("timeout"); }, 3000); });`,
        `const udp = () => new Promise((r) => { const s = dgram.createSocket("udp4"); s.on("message", () => { s.close(); r("answered"); }); s.on("error", (e) => { s.close(); r(e.code); });`,
        `  s.send(Buffer.from("12340100000100000000000004746573740000010001", "hex"), 53, "${outside}"); setTimeout(() => { try { s.close(); } catch {} r("silent"); }, 2000); });`,
        `console.log(JSON.stringify({ proxy: await tcp(3128), dnsTcp: await tcp(53), dnsUdp: await udp() }));`,
      ].join("\n");
      expect(JSON.parse(await fromEgress(script))).toEqual({ proxy: "ECONNREFUSED", dnsTcp: "ECONNREFUSED", dnsUdp: "silent" });
      // Control: on the sandbox side it answers.
      expect(await attacker.send({ op: "dns", server: a.sidecarAddress, name: "x.test", transport: "udp" })).toMatchObject({ ok: true, rcode: 3 });
    });

    it("has a single interface, on the sandbox network", async () => {
      const r = await attacker.send({ op: "routes" });
      const routes = String(r["routes"]).split("\n").slice(1).map((l) => l.split("\t")[0]);
      expect(new Set(routes)).toEqual(new Set(["eth0"]));
    });
  });
});
