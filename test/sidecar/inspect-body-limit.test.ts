import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freezeBaseline, recordBaseline, serialiseBaseline, type Observation } from "../../src/core/baseline/index.js";
import type { EgressEvent, SidecarEvent } from "../../src/core/events.js";
import { silentLogger } from "../../src/log.js";
import { formatRuntimeConfigIssue, parseRuntimeConfig } from "../../src/runtime/runtime-config-loader.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";
import { sidecarConfig } from "../../src/runtime/sandbox-specs.js";
import { candidateSubnets } from "../../src/runtime/subnet-allocator.js";
import { Sidecar } from "../../src/sidecar/sidecar.js";
import { SidecarConfigSchema, type SidecarConfigInput } from "../../src/sidecar/sidecar-config.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { startHttpUpstream, type HttpUpstream } from "../support/upstreams.js";

/**
 * The request-body inspection bound, from hangar.yaml (runtime.inspectBodyLimit) through the
 * sidecar's config to the bytes it reads before deciding: a body past a configured bound is
 * `not-inspected` (too-large), and with a frozen baseline that parsed bodies there, ENFORCING
 * refuses it before a byte reaches the upstream. The whole sidecar, in-process, on loopback.
 */
let dir: string;
let dns: FakeDnsServer;
let upstream: HttpUpstream;

/** A JSON mail whose body is about `bytes` long. */
const mail = (bytes: number): string => JSON.stringify({ To: "a@example.test", Subject: "hi", Body: "x".repeat(Math.max(0, bytes - 60)) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-body-limit-"));
  dns = await FakeDnsServer.start("127.0.0.1");
  // Apart from the sidecar's own 127.0.0.1, where it listens on every declared port too.
  dns.setA("api.mail.test", ["127.0.0.2"]);
  upstream = await startHttpUpstream({ host: "127.0.0.2", port: 0, label: "api" });
  await writeFile(
    join(dir, "policy.yaml"),
    `version: 1\nname: mail\nserver: { npm: { package: "fixture", version: "1.0.0" } }\negress:\n  mode: enforcing\n  allow:\n    - host: api.mail.test\n      ports: [${upstream.port}]\n`,
  );
});

afterAll(async () => {
  await upstream?.close();
  await dns?.close();
  await rm(dir, { recursive: true, force: true });
});

async function withSidecar<T>(config: Partial<SidecarConfigInput>, use: (proxyPort: number, events: SidecarEvent[]) => Promise<T>): Promise<T> {
  const events: SidecarEvent[] = [];
  const sidecar = await Sidecar.start({
    config: SidecarConfigSchema.parse({
      policyFile: join(dir, "policy.yaml"),
      answerAddress: "127.0.0.1",
      listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: {} },
      trustedUpstreamRanges: ["127.0.0.0/8"],
      ...config,
    }),
    events: { emit: (e) => events.push(e) },
    logger: silentLogger(),
    upstreams: [{ host: "127.0.0.1", port: dns.port }],
  });
  try {
    return await use(sidecar.addresses().proxy.port, events);
  } finally {
    await sidecar.destroy();
  }
}

/** POSTs `body` to api.mail.test through the explicit proxy; resolves with the status. */
function post(proxyPort: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: proxyPort, method: "POST", path: `http://api.mail.test:${upstream.port}/email`, agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const decides = (events: readonly SidecarEvent[]): EgressEvent[] => events.filter((e): e is EgressEvent => e.type === "egress" && e.phase === "decide");

describe("runtime.inspectBodyLimit in hangar.yaml", () => {
  it("takes a size or a number of bytes, and hands the sidecar its bytes (none given: the sidecar's 1 MiB)", () => {
    const parsed = parseRuntimeConfig("runtime:\n  inspectBodyLimit: 256k\n", "hangar.yaml");
    if (!parsed.ok) throw new Error(parsed.issues.map(formatRuntimeConfigIssue).join("\n"));
    const subnet = [...candidateSubnets("10.213.0.0/16", [])][0]!;
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime: parsed.config.runtime })).inspectBodyBytes).toBe(256 * 1024);
    const bytes = parseRuntimeConfig("runtime:\n  inspectBodyLimit: 4096\n", "hangar.yaml");
    expect(bytes.ok && SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime: bytes.config.runtime })).inspectBodyBytes).toBe(4096);
    expect(SidecarConfigSchema.parse(sidecarConfig({ subnet, runtime: defaultRuntimeConfig().runtime })).inspectBodyBytes).toBe(1024 * 1024);
  });

  it("refuses a value that is not a size from 1k to 64m, naming the file, the path and the value", () => {
    for (const [value, shown] of [["2g", '"2g"'], ["0", "0"], ["lots", '"lots"'], ["512", "512"]] as const) {
      const result = parseRuntimeConfig(`runtime:\n  inspectBodyLimit: ${value}\n`, "hangar.yaml");
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.issues.map(formatRuntimeConfigIssue)).toEqual([`hangar.yaml:2:21: runtime.inspectBodyLimit: ${shown} is not a size from "1k" to "64m" (such as "256k" or "1m")`]);
    }
  });
});

describe("a sidecar with a configured body bound", () => {
  it("reads a body up to the bound: past it the request is body-not-inspected (too-large), below it its fields are seen", async () => {
    await withSidecar({ inspectBodyBytes: 2048 }, async (proxyPort, events) => {
      expect(await post(proxyPort, mail(1000))).toBe(200);
      expect(await post(proxyPort, mail(5000))).toBe(200);
      const [small, large] = decides(events);
      expect(small).toMatchObject({ bodyKind: "json", bodyFields: ["Body", "Subject", "To"] });
      expect(large).toMatchObject({ bodyKind: "not-inspected", bodyNotInspected: "too-large" });
      expect(large?.bodyFields ?? []).toEqual([]);
    });
    // The same 5000-byte body under the default bound is inspected whole.
    await withSidecar({}, async (proxyPort, events) => {
      expect(await post(proxyPort, mail(5000))).toBe(200);
      expect(decides(events)[0]).toMatchObject({ bodyKind: "json", bodyFields: ["Body", "Subject", "To"] });
    });
  });

  it("ENFORCING with a baseline that parsed bodies there: a body past the bound is refused before it reaches the upstream", async () => {
    // Learned under the default bound: the route's bodies were parsed.
    const learned = await withSidecar({}, async (proxyPort, events) => {
      expect(await post(proxyPort, mail(5000))).toBe(200);
      return decides(events).flatMap((e): Observation[] => [
        { kind: "tool-call", tool: "send_email", ts: e.ts },
        { kind: "event", event: { ...e, attribution: { tools: ["send_email"] } } },
      ]);
    });
    const baselineFile = join(dir, "frozen.json");
    await writeFile(baselineFile, serialiseBaseline(freezeBaseline(recordBaseline({ server: "mail", rateTolerance: 100 }, learned), new Date())));

    await withSidecar({ inspectBodyBytes: 2048, baselineFile }, async (proxyPort, events) => {
      const before = upstream.requests.length;
      expect(await post(proxyPort, mail(5000))).toBe(403);
      expect(upstream.requests).toHaveLength(before);
      expect(decides(events).at(-1)).toMatchObject({ verdict: "block", reasons: ["drift-body-not-inspected"], bodyNotInspected: "too-large" });
      // Within the bound, the same route and fields go through.
      expect(await post(proxyPort, mail(1000))).toBe(200);
      expect(upstream.requests).toHaveLength(before + 1);
    });
  });
});
