import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../../src/core/events.js";
import { cgroupMemoryLimit, ConnectionBudget } from "../../../src/sidecar/proxy/connection-budget.js";
import { SidecarConfigSchema } from "../../../src/sidecar/sidecar-config.js";
import { withExplicit, withTransparent } from "./fixtures.js";
import { closed, connectTcp, openConnect, rawRequest, until } from "./harness.js";

/**
 * The sidecar's own bounds, on loopback: a cap on live connections shared by every listener,
 * rate-limited refusal events, idle cuts on spliced connections (silent ones included), and a
 * memory budget that refuses new work before the cgroup would kill the process.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const dbPolicy = (port: number) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const capEvents = (events: EgressEvent[]): EgressEvent[] => events.filter((e) => e.reasons.includes("connection-cap"));

function quiet(socket: Socket): Socket {
  socket.on("error", () => undefined);
  return socket;
}

async function echo(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once("data", (d: Buffer) => resolve(d.toString("latin1")));
    socket.write(text);
  });
}

/** Whether the peer has closed `socket` within `ms`. */
async function closesWithin(socket: Socket, ms: number): Promise<boolean> {
  return Promise.race([closed(socket).then(() => true), sleep(ms).then(() => false)]);
}

describe("connection cap", () => {
  it("a flood of silent connections past the cap churns itself: live stays at the cap and the declared destination still answers", async () => {
    const budget = new ConnectionBudget({ now: Date.now, maxConnections: 20, refusalEventsPerSecond: 5 });
    disposers.push(async () => budget.close());
    // A single owner on an HTTP port: silent connections would be dialled after the peek.
    const t = await withTransparent({ kind: "http", budget, peekTimeoutMs: 5000 });
    disposers.push(t.dispose);

    const flood: Socket[] = [];
    for (let i = 0; i < 60; i++) flood.push(quiet(await connectTcp(t.port)));
    await until(() => budget.connections <= 20 && flood.filter((s) => s.closed).length >= 40);
    expect(budget.connections).toBeLessThanOrEqual(20);

    // A real request during the flood gets in (it displaces a silent one) and is answered.
    const client = quiet(await connectTcp(t.port));
    const response = await rawRequest(client, `api.allowed.test:${t.port}`, "/during-flood");
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(budget.connections).toBeLessThanOrEqual(21);

    // Reported, but rate-limited: 41 displacements, at most a window or two of events.
    const reported = capEvents(t.sink.egress());
    expect(reported.length).toBeGreaterThan(0);
    expect(reported.length).toBeLessThanOrEqual(10);
    expect(reported[0]).toMatchObject({ verdict: "block", phase: "decide", port: t.port });
    expect(reported[0]!.error).toMatch(/displaced the oldest silent connection/);
    for (const s of flood) s.destroy();
    client.destroy();
  });

  it("with every slot carrying bytes, a new connection is refused at once, with rate-limited events that count the rest", async () => {
    const budget = new ConnectionBudget({ now: Date.now, maxConnections: 10, refusalEventsPerSecond: 3 });
    disposers.push(async () => budget.close());
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, budget });
    disposers.push(t.dispose);

    const live: Socket[] = [];
    for (let i = 0; i < 10; i++) {
      const s = quiet(await connectTcp(t.port));
      expect(await echo(s, `\x00${i}`)).toBe(`\x00${i}`);
      live.push(s);
    }
    const refused: Socket[] = [];
    for (let i = 0; i < 30; i++) refused.push(quiet(await connectTcp(t.port)));
    for (const s of refused) expect(await closesWithin(s, 1000)).toBe(true);
    expect(budget.refused).toBe(30);
    const first = capEvents(t.sink.egress());
    expect(first.length).toBeGreaterThanOrEqual(1);
    expect(first.length).toBeLessThanOrEqual(6); // 3 a second, the flood may straddle a window
    expect(first[0]).toMatchObject({ verdict: "block", reasons: ["connection-cap"], port: t.port });
    expect(first[0]!.error).toMatch(/^refused: 10 live connections, cap 10/);

    // The next window's first report carries the count of those not reported.
    await sleep(1100);
    quiet(await connectTcp(t.port));
    await until(() => capEvents(t.sink.egress()).length > first.length);
    expect(capEvents(t.sink.egress()).at(-1)!.error).toMatch(/; \d+ more not reported$/);

    // The live connections were never touched; a freed slot admits again.
    expect(await echo(live[0]!, "still")).toBe("still");
    live[0]!.destroy();
    await until(() => budget.connections < 10);
    const again = quiet(await connectTcp(t.port));
    expect(await echo(again, "\x00again")).toBe("\x00again");
    for (const s of [...live, again]) s.destroy();
  });

  it("one budget counts every listener: the explicit proxy refuses once the transparent listener holds the cap", async () => {
    const budget = new ConnectionBudget({ now: Date.now, maxConnections: 3 });
    disposers.push(async () => budget.close());
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, budget });
    disposers.push(t.dispose);
    const e = await withExplicit({ kind: "tcp", egress: dbPolicy, budget });
    disposers.push(e.dispose);
    const live: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = quiet(await connectTcp(t.port));
      await echo(s, "\x00x");
      live.push(s);
    }
    const viaProxy = quiet(await connectTcp(e.proxyPort));
    expect(await closesWithin(viaProxy, 1000)).toBe(true);
    expect(capEvents(e.sink.egress())[0]).toMatchObject({ path: "explicit", verdict: "block" });
    for (const s of live) s.destroy();
  });
});

describe("memory budget", () => {
  it("refuses new connections while resident memory is over the high-water mark, and admits again once it drops", async () => {
    let rss = 10;
    const budget = new ConnectionBudget({ now: Date.now, memoryHighWaterBytes: 100, rss: () => rss, memorySampleMs: 10 });
    disposers.push(async () => budget.close());
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, budget });
    disposers.push(t.dispose);

    rss = 1000;
    await sleep(50);
    const refused = quiet(await connectTcp(t.port));
    expect(await closesWithin(refused, 1000)).toBe(true);
    const event = await t.sink.waitFor((e) => e.reasons.includes("memory-budget"));
    expect(event).toMatchObject({ verdict: "block", phase: "decide" });

    rss = 10;
    await sleep(50);
    const admitted = quiet(await connectTcp(t.port));
    expect(await echo(admitted, "\x00ok")).toBe("\x00ok");
    admitted.destroy();
  });
});

describe("budget defaults", () => {
  it("reads the memory budget from the cgroup (v2, then v1), and treats 'max' or an unlimited v1 value as none", async () => {
    const files = (table: Record<string, string>) => async (f: string) => {
      const text = table[f];
      if (text === undefined) throw new Error("ENOENT");
      return text;
    };
    expect(await cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory.max": "134217728\n" }))).toBe(134217728);
    expect(await cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory.max": "max\n" }))).toBeUndefined();
    expect(await cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n" }))).toBe(268435456);
    expect(await cgroupMemoryLimit(files({ "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n" }))).toBeUndefined();
    expect(await cgroupMemoryLimit(files({}))).toBeUndefined();
  });

  it("a sidecar config gets a connection cap, an idle timeout and a drain deadline by default", () => {
    const config = SidecarConfigSchema.parse({ policyFile: "p.yaml", answerAddress: "10.0.0.2" });
    expect(config).toMatchObject({ maxConnections: 1024, idleTimeoutMs: 300_000, drainTimeoutMs: 5000 });
    expect(config.memoryBudgetMiB).toBeUndefined();
  });
});

describe("idle and silent connections", () => {
  it("an idle spliced connection is cut after the idle timeout, with a close event that says so and counts its bytes", async () => {
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, idleTimeoutMs: 300 });
    disposers.push(t.dispose);
    const s = quiet(await connectTcp(t.port));
    expect(await echo(s, "\x00ping")).toBe("\x00ping");
    const started = Date.now();
    expect(await closesWithin(s, 3000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close.reasons).toContain("idle-timeout");
    expect(close).toMatchObject({ verdict: "allow", bytesUp: 5, bytesDown: 5 });
  });

  it("traffic keeps a spliced connection open past the idle timeout", async () => {
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, idleTimeoutMs: 300 });
    disposers.push(t.dispose);
    const s = quiet(await connectTcp(t.port));
    for (let i = 0; i < 6; i++) {
      expect(await echo(s, `\x00${i}`)).toBe(`\x00${i}`);
      await sleep(150);
    }
    expect(s.closed).toBe(false);
    s.destroy();
  });

  it("a silent connection on a single-owner port is dialled after the peek, then cut at the idle timeout, never held", async () => {
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy, peekTimeoutMs: 100, idleTimeoutMs: 300 });
    disposers.push(t.dispose);
    const s = quiet(await connectTcp(t.port));
    expect(await closesWithin(s, 3000)).toBe(true);
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close).toMatchObject({ bytesUp: 0, bytesDown: 0 });
    expect(close.reasons).toContain("idle-timeout");
    expect(t.listener.connections).toBe(0);
  });

  it("a silent CONNECT tunnel is cut at the idle timeout, with its close event", async () => {
    const e = await withExplicit({ kind: "tcp", egress: dbPolicy, peekTimeoutMs: 100, idleTimeoutMs: 300 });
    disposers.push(e.dispose);
    const { status, socket } = await openConnect(e.proxyPort, `db.allowed.test:${e.port}`);
    expect(status).toBe(200);
    quiet(socket);
    expect(await closesWithin(socket, 3000)).toBe(true);
    const close = await e.sink.waitFor((ev) => ev.phase === "close");
    expect(close.reasons).toContain("idle-timeout");
    expect(e.proxy.tunnelCount).toBe(0);
  });
});
