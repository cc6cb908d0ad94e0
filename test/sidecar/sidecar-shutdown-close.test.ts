import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDnsServer } from "../support/fake-dns.js";
import { SidecarProcess } from "../support/sidecar-process.js";
import { startTcpUpstream, type Upstream } from "../support/upstreams.js";
import { connectTcp, openConnect } from "./proxy/harness.js";

/**
 * Connections cut by a shutdown still leave their close events. The real sidecar process
 * holds spliced connections (transparent and CONNECT) that never end on their own; on SIGTERM
 * it drains for its drain timeout, cuts the rest, and exits inside the engine's 10 s stop
 * grace with one close event, bytes counted, for every connection it decided to allow.
 */
let dns: FakeDnsServer;
let upstream: Upstream;
let sidecar: SidecarProcess;

beforeAll(async () => {
  upstream = await startTcpUpstream({ host: "127.0.0.2", port: 0, label: "db" });
  dns = await FakeDnsServer.start("127.0.0.4");
  dns.setA("db.allowed.test", ["127.0.0.2"]);
  sidecar = await SidecarProcess.start(
    `version: 1
name: shutdown
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
    - host: db.allowed.test
      ports: [${upstream.port}]
`,
    {
      answerAddress: "127.0.0.1",
      listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { [String(upstream.port)]: 0 } },
      upstreamDns: [`127.0.0.4:${dns.port}`],
      trustedUpstreamRanges: ["127.0.0.2/32"],
    },
  );
});

afterAll(async () => {
  await sidecar?.[Symbol.asyncDispose]();
  await upstream?.close();
  await dns?.close();
});

async function echo(socket: Socket, text: string): Promise<void> {
  await new Promise<void>((resolve) => {
    let got = "";
    const onData = (d: Buffer): void => {
      got += d.toString("latin1");
      if (got.length < text.length) return;
      socket.off("data", onData);
      resolve();
    };
    socket.on("data", onData);
    socket.resume(); // openConnect leaves it paused
    socket.write(text);
  });
}

describe("sidecar process: close events for connections cut by SIGTERM", () => {
  it("writes one close event with bytes per allowed spliced connection, and exits inside the stop grace", async () => {
    const transparentPort = (sidecar.started().detail!["transparent"] as Record<string, number>)[String(upstream.port)]!;
    const held: Socket[] = [];
    for (let i = 0; i < 15; i++) {
      const s = await connectTcp(transparentPort);
      s.on("error", () => undefined);
      await echo(s, `\x00transparent-${i}`);
      held.push(s);
    }
    for (let i = 0; i < 15; i++) {
      const { status, socket } = await openConnect(sidecar.proxyPort, `db.allowed.test:${upstream.port}`);
      expect(status).toBe(200);
      socket.on("error", () => undefined);
      await echo(socket, `\x00tunnel-${i}`);
      held.push(socket);
    }
    const allowed = () => sidecar.egress().filter((e) => e.phase === "decide" && e.verdict === "allow");
    // Events are written in batches every few ms: the last decide may still be on its way.
    await expect.poll(() => allowed().length, { timeout: 2000 }).toBe(30);

    const started = Date.now();
    sidecar.signal("SIGTERM");
    const code = await sidecar.exited();
    const took = Date.now() - started;
    expect(code).toBe(0);
    // docker stop's default grace is 10 s, then SIGKILL: every close event must be out before it.
    expect(took).toBeLessThan(9000);

    const closes = sidecar.egress().filter((e) => e.phase === "close");
    const decided = new Set(allowed().map((e) => e.id));
    expect(closes).toHaveLength(30);
    expect(new Set(closes.map((e) => e.id))).toEqual(decided);
    for (const c of closes) {
      expect(c.bytesUp).toBeGreaterThan(0);
      expect(c.bytesDown).toBe(c.bytesUp);
    }
    expect(sidecar.lifecycle("closed")).toHaveLength(1);
    for (const s of held) s.destroy();
  });
});
