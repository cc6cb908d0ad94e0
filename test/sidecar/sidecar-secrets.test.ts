import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EgressEvent, SidecarEvent } from "../../src/core/events.js";
import { silentLogger } from "../../src/log.js";
import { Sidecar } from "../../src/sidecar/sidecar.js";
import { SidecarConfigSchema } from "../../src/sidecar/sidecar-config.js";
import { FakeDnsServer } from "../support/fake-dns.js";
import { rcode, udpQuery } from "./dns/helpers.js";

/**
 * The composition root with `secrets: "stdin"`: the line on stdin carries the secrets; a
 * name carrying one (under a declared wildcard, so the policy alone would let it through) is
 * refused and never looked up upstream, in every mode for a sentinel; its event names the
 * secret and never shows it. The upstream resolver is ours, on loopback.
 */
let dir: string;
let dns: FakeDnsServer;
const running: Sidecar[] = [];
const SENTINEL = "hangar-sentinel-mfrggzdfmztwq2lknnwg23tpoa";
const VALUE = "real-value-7f3a9c1e5b";
const WATCHED = "watched-value-0d1e2f3a4b";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-sidecar-secrets-"));
  await writeFile(
    join(dir, "policy.yaml"),
    `version: 1\nname: mail\nserver: { npm: { package: "fixture", version: "1.0.0" } }\negress:\n  allow:\n    - host: "*.mail.test"\n      ports: [443]\n      inspect: true\n`,
  );
  dns = await FakeDnsServer.start();
});
afterEach(async () => {
  while (running.length > 0) await running.pop()!.destroy();
});
afterAll(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(mode: "enforcing" | "observing", line: string): Promise<{ events: SidecarEvent[]; port: number }> {
  const events: SidecarEvent[] = [];
  const sidecar = await Sidecar.start({
    config: SidecarConfigSchema.parse({
      policyFile: join(dir, "policy.yaml"),
      mode,
      secrets: "stdin",
      answerAddress: "127.0.0.1",
      listen: { host: "127.0.0.1", dnsPort: 0, proxyPort: 0, transparentPorts: { "443": 0 } },
    }),
    events: { emit: (e) => events.push(e) },
    logger: silentLogger(),
    upstreams: [{ host: "127.0.0.1", port: dns.port }],
    stdin: Readable.from([`${line}\n`]),
  });
  running.push(sidecar);
  return { events, port: sidecar.addresses().dns.port };
}

const LINE = JSON.stringify({
  secrets: [
    { name: "MAIL_TOKEN", value: VALUE, sentinel: SENTINEL, inject: { host: "api.mail.test", header: "X-Mail-Token" } },
    { name: "LEGACY_TOKEN", value: WATCHED },
  ],
});

describe("the sidecar with secrets on stdin", () => {
  it("says which secrets it holds (names only) when it starts", async () => {
    const { events } = await start("enforcing", LINE);
    const started = events.find((e) => e.type === "lifecycle" && e.action === "started");
    expect(started).toMatchObject({ detail: { secrets: ["MAIL_TOKEN", "LEGACY_TOKEN"] } });
    expect(JSON.stringify(events)).not.toContain(VALUE);
  });

  it.each(["enforcing", "observing"] as const)("in %s mode, a sentinel in a DNS name under a declared wildcard is NXDOMAIN, never looked up, and its event is redacted", async (mode) => {
    const { events, port } = await start(mode, LINE);
    const before = dns.queries.length;
    expect(rcode(await udpQuery(port, `${SENTINEL}.mail.test`))).toBe("NXDOMAIN");
    expect(rcode(await udpQuery(port, `x.${SENTINEL.toUpperCase()}.mail.test`))).toBe("NXDOMAIN");
    const leakEvents = (): EgressEvent[] => events.filter((e): e is EgressEvent => e.type === "dns" && e.reasons.includes("secret-leak"));
    // Events are written in batches every few ms: the second may still be on its way.
    await expect.poll(() => leakEvents().length, { timeout: 2000 }).toBe(2);
    const leaks = leakEvents();
    expect(leaks.map((e) => [e.verdict, e.name, e.secretLeaks])).toEqual([
      ["block", "[redacted: MAIL_TOKEN]", ["MAIL_TOKEN sentinel in name"]],
      ["block", "[redacted: MAIL_TOKEN]", ["MAIL_TOKEN sentinel in name"]],
    ]);
    expect(JSON.stringify(events).toLowerCase()).not.toContain(SENTINEL);
    expect(dns.queries.slice(before)).toEqual([]);
  });

  it("a watched value, hex-encoded in a name, would-block in observing and is still never looked up", async () => {
    const { events, port } = await start("observing", LINE);
    const before = dns.queries.length;
    expect(rcode(await udpQuery(port, `${Buffer.from(WATCHED).toString("hex")}.mail.test`))).toBe("NXDOMAIN");
    expect(events.find((e): e is EgressEvent => e.type === "dns" && e.reasons.includes("secret-leak"))).toMatchObject({ verdict: "would-block", secretLeaks: ["LEGACY_TOKEN value in name (hex)"] });
    expect(dns.queries.slice(before)).toEqual([]);
    // The same kind of name without the secret is looked up: the check above can fail.
    await udpQuery(port, "ordinary-name.mail.test");
    expect(dns.queries.slice(before).map((q) => q.name)).toContain("ordinary-name.mail.test");
  });

  it("refuses to start on a malformed line, and the error never quotes a value", async () => {
    const bad = JSON.stringify({ secrets: [{ name: "T", value: VALUE, sentinel: 42 }] });
    const err = await start("enforcing", bad).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/secrets\.0\.sentinel/);
    expect(err?.message).not.toContain(VALUE);
  });
});
