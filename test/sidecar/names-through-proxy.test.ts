import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent, SidecarEvent } from "../../src/core/events.js";
import { silentLogger } from "../../src/log.js";
import { Sidecar } from "../../src/sidecar/sidecar.js";
import { SidecarConfigSchema, type SidecarConfigInput } from "../../src/sidecar/sidecar-config.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { lowAlphabetName } from "../support/name-encoding.js";
import { rcode, udpQuery } from "./dns/helpers.js";
import { testPki } from "./proxy/fixtures.js";
import { ALLOWED_IP, connectTcp, openConnect, proxyRequest, rawRequest, sharedPort, tlsClient } from "./proxy/harness.js";

/**
 * Names under a declared wildcard carry data to whoever serves the zone, whichever path made
 * the sidecar look them up. The whole composition root, in-process, on loopback: every
 * name the sidecar resolves reaches our own upstream resolver, which counts them. v0.1
 * counted only DNS questions, so a flood through the explicit proxy, CONNECT, SNI or Host
 * reached the resolver whole (150 of 150 names).
 */
type Path = "dns" | "get" | "connect" | "sni" | "host";
const PROXY_PATHS: readonly Path[] = ["get", "connect", "sni", "host"];

let dir: string;
let dns: FakeDnsServer;
let port: number;
let ca: string;
const running: Sidecar[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-names-through-proxy-"));
  port = await sharedPort();
  ca = (await testPki()).caCert;
  await writeFile(
    join(dir, "policy.yaml"),
    `version: 1
name: names
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
    - host: "*.allowed.test"
      ports: [${port}]
`,
  );
  dns = await FakeDnsServer.start("127.0.0.1");
  // Every name exists, at an address nothing listens on: the dial fails at once, after the lookup.
  dns.setDefault((q) => ({ answers: q.type === "A" ? [{ type: "A", name: q.name, ttl: 60, data: ALLOWED_IP }] : [] }));
});

afterEach(async () => {
  for (const s of running.splice(0)) await s.destroy();
  dns.queries.length = 0;
});

afterAll(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

interface Running {
  readonly events: SidecarEvent[];
  /** Makes the sandbox ask for `name` on `path`, and waits until the sidecar has answered or hung up. */
  ask(path: Path, name: string): Promise<void>;
}

async function start(config: Partial<SidecarConfigInput> = {}): Promise<Running> {
  const events: SidecarEvent[] = [];
  const sidecar = await Sidecar.start({
    config: SidecarConfigSchema.parse({
      policyFile: join(dir, "policy.yaml"),
      answerAddress: "127.0.0.1",
      listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { [String(port)]: 0 } },
      trustedUpstreamRanges: ["127.0.0.0/8"],
      peekTimeoutMs: 300,
      ...config,
    }),
    events: { emit: (e) => events.push(e) },
    logger: silentLogger(),
    upstreams: [dns.server],
  });
  running.push(sidecar);
  const a = sidecar.addresses();
  const transparent = a.transparent.get(port)!;
  const ask = async (path: Path, name: string): Promise<void> => {
    switch (path) {
      case "dns":
        await udpQuery(a.dns.port, name);
        return;
      case "get":
        await proxyRequest(a.proxy.port, `http://${name}:${port}/`).catch(() => undefined);
        return;
      case "connect": {
        const tunnel = await openConnect(a.proxy.port, `${name}:${port}`);
        if (tunnel.status === 200) await tlsClient({ socket: tunnel.socket, servername: name, ca }).then((s) => s.destroy(), () => undefined);
        tunnel.socket.destroy();
        return;
      }
      case "sni":
        await tlsClient({ port: transparent, servername: name, ca }).then((s) => s.destroy(), () => undefined);
        return;
      case "host": {
        const s = await connectTcp(transparent);
        await rawRequest(s, name);
        return;
      }
    }
  };
  return { events, ask };
}

const queried = (): Set<string> => new Set(dns.queries.filter((q) => q.name.toLowerCase().endsWith(".allowed.test")).map((q) => q.name.toLowerCase()));
const decisions = (events: SidecarEvent[]): EgressEvent[] => events.filter((e): e is EgressEvent => e.type !== "lifecycle" && e.phase === "decide");

describe("one accounting of names, whatever the path", () => {
  it("a flood of distinct subdomains through the proxy paths is counted like DNS: at most 60 a minute reach the resolver", async () => {
    const { ask, events } = await start();
    for (let i = 0; i < 150; i++) await ask(PROXY_PATHS[i % 4]!, `d${i}-x.allowed.test`);
    expect(queried().size).toBeLessThanOrEqual(60);
    const refused = decisions(events).filter((e) => e.reasons.includes("tunnel-unique-rate"));
    expect(refused.length).toBeGreaterThanOrEqual(90);
    // Every proxy path was refused for it, not only one.
    expect(new Set(refused.map((e) => (e.method !== undefined ? `${e.path}-http` : `${e.path}-${e.protocol}`)))).toEqual(
      new Set(["explicit-http", "explicit-connect", "transparent-tls", "transparent-http"]),
    );
  });

  it("DNS and every proxy path spend one lookup budget: the resolver sees no more distinct names than it allows", async () => {
    const { ask, events } = await start({ lookupBudget: { names: 12 } });
    for (let i = 0; i < 50; i++) await ask((["dns", ...PROXY_PATHS] as const)[i % 5]!, `b${i}-x.allowed.test`);
    expect(queried().size).toBe(12);
    const refused = decisions(events).filter((e) => e.reasons.includes("tunnel-budget"));
    expect(refused.length).toBeGreaterThanOrEqual(38);
    expect(new Set(refused.map((e) => e.type))).toEqual(new Set(["dns", "egress"]));
    for (const e of refused) expect(e.verdict).toBe("block");
    // A name already looked up keeps working past the budget: only new names are refused.
    const first = [...queried()][0]!;
    const before = dns.queries.length;
    await ask("dns", first);
    expect(decisions(events).at(-1)).toMatchObject({ name: first, verdict: "allow" });
    expect(dns.queries.length).toBe(before);
  });

  it("a name asked by DNS and then by SNI, Host, GET and CONNECT is one name and one lookup", async () => {
    const { ask } = await start({ lookupBudget: { names: 1 } });
    for (const path of ["dns", ...PROXY_PATHS] as const) await ask(path, "same.allowed.test");
    expect(dns.queries.filter((q) => q.name === "same.allowed.test").length).toBe(1);
    await ask("sni", "other.allowed.test");
    expect([...queried()]).toEqual(["same.allowed.test"]);
  });

  it("the low-alphabet encoding (~95 bytes a name) is refused on every path and never looked up", async () => {
    const { ask, events } = await start();
    const names = (["dns", ...PROXY_PATHS] as const).map((path, i) => [path, lowAlphabetName("allowed.test", i + 1)] as const);
    for (const [path, name] of names) await ask(path, name);
    expect(queried().size).toBe(0);
    for (const [, name] of names) {
      const decided = decisions(events).filter((e) => e.name === name);
      expect(decided.length).toBeGreaterThan(0);
      for (const e of decided) expect(e).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["tunnel-bits"]) });
    }
  });
});

describe("OBSERVING on the proxy paths", () => {
  it("never resolves an undeclared name or a tunnelling name: refused, recorded would-block, the resolver asked nothing", async () => {
    const { ask, events } = await start({ mode: "observing" });
    const tunnel = lowAlphabetName("allowed.test", 42);
    for (const path of ["dns", ...PROXY_PATHS] as const) {
      await ask(path, "evil.test");
      await ask(path, tunnel);
    }
    expect(dns.queries).toEqual([]);
    const decided = decisions(events);
    expect(decided.length).toBeGreaterThanOrEqual(10);
    for (const e of decided) {
      expect(e.verdict).toBe("would-block");
      expect(e.ip).toBeUndefined();
      expect(e.reasons).toEqual(expect.arrayContaining([e.name === "evil.test" ? "undeclared-host" : "tunnel-bits"]));
    }
    // The same sidecar still resolves what the policy declares.
    await ask("get", "fine.allowed.test");
    expect([...queried()]).toEqual(["fine.allowed.test"]);
    expect(rcode(await udpQuery((running[0]!.addresses().dns).port, "evil.test"))).toBe("NXDOMAIN");
  });
});
