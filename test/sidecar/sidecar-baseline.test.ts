import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freezeBaseline, recordBaseline, serialiseBaseline } from "../../src/core/baseline/index.js";
import type { EgressEvent, SidecarEvent } from "../../src/core/events.js";
import { isHangarError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/log.js";
import { Sidecar } from "../../src/sidecar/sidecar.js";
import { SidecarConfigSchema, type SidecarConfigInput } from "../../src/sidecar/sidecar-config.js";
import { call, connection, T0 } from "../baseline/support/observations.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { aData, rcode, udpQuery } from "./dns/helpers.js";

/**
 * The sidecar's own inputs beyond the policy: a frozen baseline file (drift is blocked in
 * ENFORCING, would-block in OBSERVING) and the capture override replay and quarantine use.
 * The whole composition root, in-process, on loopback; the upstream resolver is ours.
 */
let dir: string;
let dns: FakeDnsServer;
const running: Sidecar[] = [];

const POLICY = `version: 1
name: postmark
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
    - host: "*.test"
      ports: [80]
`;

async function frozenBaseline(file: string): Promise<void> {
  const learned = recordBaseline({ server: "postmark" }, [call("send_email", T0), ...connection("api.mail.test", 80, T0 + 10, ["send_email"])]);
  await writeFile(file, serialiseBaseline(freezeBaseline(learned, new Date(T0 + 60_000))));
}

async function start(config: Partial<SidecarConfigInput>): Promise<{ sidecar: Sidecar; events: SidecarEvent[]; port: number }> {
  const events: SidecarEvent[] = [];
  const sidecar = await Sidecar.start({
    config: SidecarConfigSchema.parse({
      policyFile: join(dir, "policy.yaml"),
      answerAddress: "127.0.0.1",
      listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { "80": 0, "443": 0 } },
      ...config,
    }),
    events: { emit: (e) => events.push(e) },
    logger: silentLogger(),
    upstreams: [{ host: "127.0.0.1", port: dns.port }],
  });
  running.push(sidecar);
  return { sidecar, events, port: sidecar.addresses().dns.port };
}

const dnsEvent = (events: SidecarEvent[], name: string): EgressEvent | undefined =>
  events.find((e): e is EgressEvent => e.type === "dns" && e.name === name && e.recordType === "A");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-sidecar-baseline-"));
  await writeFile(join(dir, "policy.yaml"), POLICY);
  await frozenBaseline(join(dir, "frozen.json"));
  const learning = recordBaseline({ server: "postmark" }, [call("send_email", T0)]);
  await writeFile(join(dir, "learning.json"), serialiseBaseline(learning));
  dns = await FakeDnsServer.start("127.0.0.1");
  dns.setA("api.mail.test", ["127.0.0.1"]).setA("collector.evil.test", ["127.0.0.1"]);
});

afterEach(async () => {
  for (const s of running.splice(0)) await s.destroy();
});

afterAll(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

describe("a sidecar with a frozen baseline", () => {
  it("ENFORCING: answers what the baseline saw, and refuses a new name under a declared wildcard as drift", async () => {
    const { events, port } = await start({ baselineFile: join(dir, "frozen.json"), trustedUpstreamRanges: ["127.0.0.0/8"] });
    const known = await udpQuery(port, "api.mail.test");
    expect(rcode(known)).toBe("NOERROR");
    expect(aData(known)).toEqual(["127.0.0.1"]);
    const drifted = await udpQuery(port, "collector.evil.test");
    expect(rcode(drifted)).toBe("NXDOMAIN");
    expect(dnsEvent(events, "collector.evil.test")).toMatchObject({ verdict: "block", reasons: ["drift-new-dns-name"], rule: "*.test" });
    expect(dnsEvent(events, "api.mail.test")).toMatchObject({ verdict: "allow" });
    expect(events.find((e) => e.type === "lifecycle" && e.action === "started")).toMatchObject({ detail: { baseline: true, mode: "enforcing" } });
  });

  it("OBSERVING: the same drift flows, recorded as would-block", async () => {
    const { events, port } = await start({ baselineFile: join(dir, "frozen.json"), mode: "observing", trustedUpstreamRanges: ["127.0.0.0/8"] });
    const drifted = await udpQuery(port, "collector.evil.test");
    expect(rcode(drifted)).toBe("NOERROR");
    expect(dnsEvent(events, "collector.evil.test")).toMatchObject({ verdict: "would-block", reasons: ["drift-new-dns-name"] });
  });

  it("without a baseline the wildcard alone decides", async () => {
    const { events, port } = await start({ trustedUpstreamRanges: ["127.0.0.0/8"] });
    expect(rcode(await udpQuery(port, "collector.evil.test"))).toBe("NOERROR");
    expect(dnsEvent(events, "collector.evil.test")).toMatchObject({ verdict: "allow" });
  });

  it("refuses to start on a learning baseline, or a missing one, with a clear error", async () => {
    const failure = (file: string): Promise<unknown> => start({ baselineFile: file }).then(() => undefined, (err: unknown) => err);
    const learning = await failure(join(dir, "learning.json"));
    expect(isHangarError(learning, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((learning as Error).message).toMatch(/still learning; freeze it first/);
    const missing = await failure(join(dir, "nope.json"));
    expect(isHangarError(missing)).toBe(true);
    expect((missing as Error).message).toMatch(/nope\.json/);
  });

  it("re-reads the baseline on reload; a bad one leaves the old one in force", async () => {
    const file = join(dir, "reloaded.json");
    await frozenBaseline(file);
    const { sidecar, port } = await start({ baselineFile: file, trustedUpstreamRanges: ["127.0.0.0/8"] });
    expect(rcode(await udpQuery(port, "collector.evil.test"))).toBe("NXDOMAIN");
    await writeFile(file, "{ not json");
    expect((await sidecar.reload()).ok).toBe(false);
    expect(rcode(await udpQuery(port, "collector.evil.test"))).toBe("NXDOMAIN");
    const wider = recordBaseline({ server: "postmark" }, [call("send_email", T0), ...connection("api.mail.test", 80, T0 + 10, ["send_email"]), ...connection("collector.evil.test", 80, T0 + 20, ["send_email"])]);
    await writeFile(file, serialiseBaseline(freezeBaseline(wider, new Date(T0 + 60_000))));
    expect((await sidecar.reload()).ok).toBe(true);
    expect(rcode(await udpQuery(port, "collector.evil.test"))).toBe("NOERROR");
  });
});

describe("the capture override", () => {
  it("turns a policy with allow rules into a quarantine: every name resolves to the sidecar, every attempt is recorded", async () => {
    const { events, port, sidecar } = await start({ capture: true });
    const answer = await udpQuery(port, "anything.example.org");
    expect(aData(answer)).toEqual(["127.0.0.1"]);
    expect(dnsEvent(events, "anything.example.org")).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["capture"]) });
    // Nothing was asked upstream: capture never resolves for real.
    expect(dns.queries.some((q) => q.name === "anything.example.org")).toBe(false);
    expect([...sidecar.addresses().transparent.keys()]).toEqual([80, 443]);
  });

  it("takes explicit capture ports", async () => {
    const { sidecar } = await start({ capture: { ports: [8080] }, listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { "80": 0, "8080": 0 } } });
    expect([...sidecar.addresses().transparent.keys()].sort((a, b) => a - b)).toEqual([80, 8080]);
  });
});
