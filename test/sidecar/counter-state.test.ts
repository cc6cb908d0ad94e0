import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent, LifecycleEvent, SidecarEvent } from "../../src/core/events.js";
import { isHangarError } from "../../src/core/errors.js";
import { nameBits } from "../../src/core/tunnelling.js";
import { silentLogger } from "../../src/log.js";
import { CounterReporter, isCounterState, readCounterState } from "../../src/sidecar/counter-state.js";
import { SubdomainRate } from "../../src/sidecar/dns/subdomain-rate.js";
import { NameAccounting } from "../../src/sidecar/name-accounting.js";
import { ConnectionRate } from "../../src/sidecar/proxy/connection-rate.js";
import { Sidecar } from "../../src/sidecar/sidecar.js";
import { SidecarConfigSchema } from "../../src/sidecar/sidecar-config.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { testPolicy } from "../support/sidecar-context.js";
import { rcode, udpQuery } from "./dns/helpers.js";

/**
 * Rate and tunnelling counts survive a sidecar restart: the old process reports them (no
 * names), the control plane hands them to the new one, which starts where the old left off.
 */
const policy = testPolicy({ name: "fixture", egress: { allow: [{ host: "*.allowed.test" }] } });

function clock(start = 1_000_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("SubdomainRate snapshot and restore", () => {
  it("carries the count and the bits of the window, without the names", () => {
    const c = clock();
    const before = new SubdomainRate({ now: c.now });
    for (const n of ["aa", "bb", "cc"]) before.observe("*.allowed.test", `${n}.allowed.test`, 10);
    c.advance(2_000);
    before.observe("*.allowed.test", "dd.allowed.test", 5);
    const snap = before.snapshot();
    expect(JSON.stringify(snap)).not.toContain("aa.allowed");

    const after = new SubdomainRate({ now: c.now });
    after.restore(JSON.parse(JSON.stringify(snap)));
    expect(after.count("*.allowed.test")).toBe(4);
    expect(after.weight("*.allowed.test")).toBeCloseTo(35, 1);
    // A name asked again after the restart counts once more: the error is towards the limit.
    expect(after.observe("*.allowed.test", "aa.allowed.test", 10)).toBe(5);
  });

  it("lets restored entries expire with the window, never earlier", () => {
    const c = clock();
    const before = new SubdomainRate({ now: c.now, windowMs: 60_000 });
    before.observe("*.allowed.test", "a.allowed.test", 1);
    c.advance(59_000);
    const after = new SubdomainRate({ now: c.now, windowMs: 60_000 });
    after.restore(before.snapshot());
    expect(after.count("*.allowed.test")).toBe(1);
    c.advance(2_000);
    expect(after.count("*.allowed.test")).toBe(0);
    expect(after.weight("*.allowed.test")).toBe(0);
  });

  it("keeps the per-suffix bound when restoring", () => {
    const c = clock();
    const before = new SubdomainRate({ now: c.now, maxNamesPerSuffix: 100 });
    for (let i = 0; i < 100; i++) before.observe("*.allowed.test", `n${i}.allowed.test`);
    const after = new SubdomainRate({ now: c.now, maxNamesPerSuffix: 10 });
    after.restore(before.snapshot());
    expect(after.count("*.allowed.test")).toBe(10);
  });
});

describe("ConnectionRate snapshot and restore", () => {
  it("continues the per-minute count across a restart, and forgets a minute later", () => {
    const c = clock();
    const before = new ConnectionRate(c.now);
    for (let i = 0; i < 7; i++) before.hit("api.test:443");
    const after = new ConnectionRate(c.now);
    after.restore(JSON.parse(JSON.stringify(before.snapshot())));
    expect(after.hit("api.test:443")).toBe(8);
    c.advance(61_000);
    expect(after.hit("api.test:443")).toBe(1);
  });

  it("ignores buckets outside the minute (a stale file)", () => {
    const c = clock();
    const before = new ConnectionRate(c.now);
    before.hit("api.test:443");
    const snap = before.snapshot();
    c.advance(120_000);
    const after = new ConnectionRate(c.now);
    after.restore(snap);
    expect(after.hit("api.test:443")).toBe(1);
  });
});

describe("CounterReporter", () => {
  it("reports only when something was counted since the last report", () => {
    const c = clock();
    const names = new NameAccounting({ now: c.now });
    const rate = new ConnectionRate(c.now);
    const reports: unknown[] = [];
    const reporter = new CounterReporter({ names, rate, report: (s) => reports.push(s) });
    reporter.flush();
    expect(reports).toHaveLength(1);
    reporter.flush();
    expect(reports).toHaveLength(1);
    names.observe(policy, "x.allowed.test");
    reporter.flush();
    expect(reports).toHaveLength(2);
    rate.hit("x.allowed.test:443");
    reporter.flush();
    expect(reports).toHaveLength(3);
    expect(isCounterState(reports[2])).toBe(true);
    const restored = new NameAccounting({ now: c.now });
    restored.restore((reports[2] as { names: Parameters<NameAccounting["restore"]>[0] }).names);
    expect(restored.observe(policy, "y.allowed.test")).toMatchObject({ uniqueSubdomainsPerMinute: 2 });
    expect(restored.observe(policy, "y.allowed.test").subdomainBitsPerMinute).toBeGreaterThanOrEqual(nameBits(["x"]) + nameBits(["y"]) - 0.01);
  });
});

describe("readCounterState", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-counters-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is undefined when there is no file, and names the file and the path when it is wrong", async () => {
    expect(await readCounterState(join(dir, "none.json"))).toBeUndefined();
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ v: 1, names: { asked: { "*.a.test": [[1, -2, 0]] }, lookedUp: {} }, rates: {} }));
    const err = await readCounterState(bad).catch((e: unknown) => e);
    expect(isHangarError(err, "HANGAR_CONFIG_INVALID")).toBe(true);
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toContain("names.asked.*.a.test.0.1");
    await writeFile(bad, "{not json");
    expect(((await readCounterState(bad).catch((e: unknown) => e)) as Error).message).toMatch(/bad\.json is not JSON/);
  });
});

describe("a restarted sidecar keeps the lookup budget", () => {
  let dir: string;
  let dns: FakeDnsServer;
  const running: Sidecar[] = [];
  const NAMES = ["n1", "n2", "n3", "n4", "n5", "n6"].map((n) => `${n}.allowed.test`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-counters-sidecar-"));
    await writeFile(
      join(dir, "policy.yaml"),
      `version: 1\nname: fixture\nserver: { npm: { package: "fixture", version: "1.0.0" } }\negress:\n  mode: enforcing\n  allow:\n    - host: "*.allowed.test"\n      ports: [443]\n`,
    );
    dns = await FakeDnsServer.start("127.0.0.1");
    for (const n of NAMES) dns.setA(n, ["127.0.0.1"]);
  });
  afterEach(async () => {
    for (const s of running.splice(0)) await s.destroy();
  });
  afterAll(async () => {
    await dns.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(countersFile: string): Promise<{ sidecar: Sidecar; events: SidecarEvent[]; port: number }> {
    const events: SidecarEvent[] = [];
    const sidecar = await Sidecar.start({
      config: SidecarConfigSchema.parse({
        policyFile: join(dir, "policy.yaml"),
        answerAddress: "127.0.0.1",
        listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { "443": 0 } },
        trustedUpstreamRanges: ["127.0.0.0/8"],
        lookupBudget: { names: 5 },
        countersFile,
      }),
      events: { emit: (e) => events.push(e) },
      logger: silentLogger(),
      upstreams: [{ host: "127.0.0.1", port: dns.port }],
    });
    running.push(sidecar);
    return { sidecar, events, port: sidecar.addresses().dns.port };
  }

  const verdictOf = (events: SidecarEvent[], name: string): EgressEvent | undefined =>
    events.find((e): e is EgressEvent => e.type === "dns" && e.name === name);

  it("refuses the sixth name after a restart, as the first process would have", async () => {
    const file = join(dir, "counters.json");
    const first = await start(file);
    expect(first.events.find((e) => e.type === "lifecycle" && e.action === "started")).toMatchObject({ detail: { restoredCounters: false } });
    for (const name of NAMES.slice(0, 5)) expect(rcode(await udpQuery(first.port, name))).toBe("NOERROR");
    first.sidecar.flushCounters();
    const report = first.events.filter((e): e is LifecycleEvent => e.type === "lifecycle" && e.action === "counters").at(-1);
    expect(report).toBeDefined();
    expect(JSON.stringify(report)).not.toContain("n1.allowed.test");
    await first.sidecar.destroy();

    // What the supervisor does before a restart: the last report, as the file.
    await writeFile(file, JSON.stringify(report!.detail));
    const second = await start(file);
    expect(second.events.find((e) => e.type === "lifecycle" && e.action === "started")).toMatchObject({ detail: { restoredCounters: true } });
    expect(rcode(await udpQuery(second.port, NAMES[5]!))).toBe("NXDOMAIN");
    expect(verdictOf(second.events, NAMES[5]!)).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["tunnel-budget"]) });
    expect(dns.queriesFor(NAMES[5]!)).toHaveLength(0);
  });

  it("control: without the handed-over counts the sixth name gets through", async () => {
    const fresh = await start(join(dir, "absent.json"));
    expect(rcode(await udpQuery(fresh.port, NAMES[5]!))).toBe("NOERROR");
  });
});
