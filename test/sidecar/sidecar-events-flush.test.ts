import { createSocket } from "node:dgram";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { compileAddon, UDP_BATCH_ADDON } from "../../src/images/native-addon.js";
import { hangarPackageRoot } from "../../src/images/package-root.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { SidecarProcess } from "../support/sidecar-process.js";
import { startHttpUpstream, type HttpUpstream } from "../support/upstreams.js";

/**
 * The sidecar batches its event lines per event-loop turn. A batch must never be lost: the
 * real process, under a burst of DNS queries and proxied HTTP requests, gets SIGTERM mid-burst,
 * and every attempt a client saw answered has its events in the stream the process left. Once
 * with DNS on Node's dgram socket, once on the batched one the image ships (compiled here).
 */
let dns: FakeDnsServer;
let upstream: HttpUpstream;
let sidecar: SidecarProcess;
let addonDir: string;

describe.each(["dgram", "batched"] as const)("DNS on %s", (udpKind) => {
  beforeAll(async () => {
    addonDir = await mkdtemp(join(tmpdir(), "hangar-udp-batch-"));
    const dnsUdp =
      udpKind === "dgram" ? "dgram" : await compileAddon(hangarPackageRoot(), UDP_BATCH_ADDON, join(addonDir, "udp-batch.node"));
    upstream = await startHttpUpstream({ host: "127.0.0.2", port: 0, label: "allowed" });
    dns = await FakeDnsServer.start("127.0.0.4");
    dns.setA("api.allowed.test", ["127.0.0.2"]);
    sidecar = await SidecarProcess.start(
      `version: 1
name: burst
server: { npm: { package: "fixture", version: "1.0.0" } }
egress:
  mode: enforcing
  allow:
    - host: api.allowed.test
      ports: [${upstream.port}]
`,
      {
        answerAddress: "127.0.0.1",
        listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0 },
        upstreamDns: [`127.0.0.4:${dns.port}`],
        trustedUpstreamRanges: ["127.0.0.2/32"],
      },
      { HANGAR_SIDECAR_DNS_UDP: dnsUdp },
    );
    expect(sidecar.started().detail).toMatchObject({ dns: { udp: udpKind } });
  }, 60_000);

  afterAll(async () => {
    await sidecar?.[Symbol.asyncDispose]();
    await upstream?.close();
    await dns?.close();
    await rm(addonDir, { recursive: true, force: true });
  });

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  describe("sidecar process: buffered events survive SIGTERM", () => {
    it("writes the events of every attempt a client saw answered, when SIGTERM arrives mid-burst", async () => {
      const MAX_QUERIES = 20_000;
      const MAX_REQUESTS = 5_000;
      const dnsAnswered = new Set<string>();
      const httpAnswered = new Map<string, number>();
      let stop = false;

      // Undeclared names, one per query: each is refused by the sidecar and yields one event.
      const udp = createSocket("udp4");
      udp.on("message", (msg) => {
        const name = dnsPacket.decode(msg).questions?.[0]?.name;
        if (name !== undefined) dnsAnswered.add(name);
      });
      const queries = (async () => {
        for (let i = 0; i < MAX_QUERIES && !stop; i++) {
          const query = dnsPacket.encode({ type: "query", id: i % 65536, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: `q${i}.burst.evil.test` }] });
          udp.send(query, sidecar.dnsPort, "127.0.0.1", () => undefined);
          if (i % 20 === 19) await sleep(1);
        }
      })();

      // Keep-alive requests through the explicit proxy, alternating a declared and an undeclared host.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      let next = 0;
      const worker = async (): Promise<void> => {
        while (!stop && next < MAX_REQUESTS) {
          const n = next++;
          const host = n % 2 === 0 ? `api.allowed.test:${upstream.port}` : `evil.test:${upstream.port}`;
          const url = `http://${host}/burst/${n}`;
          const status = await new Promise<number | undefined>((resolve) => {
            const req = http.request({ host: "127.0.0.1", port: sidecar.proxyPort, path: url, headers: { host }, agent }, (res) => {
              res.resume();
              res.once("end", () => resolve(res.statusCode));
              res.once("error", () => resolve(undefined));
            });
            req.once("error", () => resolve(undefined));
            req.end();
          });
          if (status === undefined) return; // the sidecar is gone
          httpAnswered.set(url, status);
        }
      };
      const workers = Promise.all(Array.from({ length: 8 }, worker));

      const deadline = Date.now() + 15_000;
      while ((dnsAnswered.size < 300 || httpAnswered.size < 100) && Date.now() < deadline) await sleep(5);
      const atSignal = dnsAnswered.size + httpAnswered.size;
      sidecar.signal("SIGTERM");
      expect(await sidecar.exited()).toBe(0);
      // 'exit' can come before the last of stdout has been read.
      if (sidecar.child.stdout?.readableEnded !== true) await new Promise((r) => sidecar.child.stdout!.once("close", r));
      stop = true;
      await Promise.all([queries, workers]);
      udp.close();
      agent.destroy();

      expect(dnsAnswered.size).toBeGreaterThanOrEqual(300);
      expect(httpAnswered.size).toBeGreaterThanOrEqual(100);
      // Mid-burst: attempts were still being answered after the signal was sent.
      expect(dnsAnswered.size + httpAnswered.size).toBeGreaterThan(atSignal);

      const events = sidecar.egress();
      const dnsNames = new Set(events.filter((e) => e.type === "dns").map((e) => e.name));
      expect([...dnsAnswered].filter((name) => !dnsNames.has(name))).toEqual([]);

      const byUrl = new Map<string, EgressEvent[]>();
      for (const e of events) if (e.type === "egress" && e.url !== undefined) byUrl.set(e.url, [...(byUrl.get(e.url) ?? []), e]);
      const missing: string[] = [];
      for (const [url, status] of httpAnswered) {
        const seen = byUrl.get(url) ?? [];
        const decide = seen.find((e) => e.phase === "decide");
        if (decide === undefined) missing.push(`${status} ${url}: no decide`);
        else if (status === 200 && !seen.some((e) => e.phase === "close")) missing.push(`${status} ${url}: no close`);
        else if ((status === 200) !== (decide.verdict === "allow")) missing.push(`${status} ${url}: decided ${decide.verdict}`);
      }
      expect(missing).toEqual([]);
      expect(sidecar.lifecycle("closing")).toHaveLength(1);
      expect(sidecar.lifecycle("closed")).toHaveLength(1);
    });
  });
});
