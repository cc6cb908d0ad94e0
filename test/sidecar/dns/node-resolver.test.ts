import { promises as dns } from "node:dns";
import { afterEach, describe, expect, it } from "vitest";
import { PUBLIC_IP, SIDECAR_ADDRESS, startHarness, type Harness } from "./helpers.js";

/** Node's own resolver (c-ares) as a real, independent client of the sidecar's DNS server. */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(options: Partial<Parameters<typeof startHarness>[0]> = {}): Promise<{ h: Harness; resolver: dns.Resolver }> {
  h = await startHarness({
    policy: { allow: [{ host: "api.example.com" }, { host: "*.svc.example.com" }], dns: { recordTypes: ["A", "TXT"] } },
    ...options,
  });
  h.upstream.setA("api.example.com", [PUBLIC_IP]);
  const resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${h.port}`]);
  return { h, resolver };
}

describe("DnsServer with Node's resolver as the client", () => {
  it("resolves a declared name to the sidecar address", async () => {
    const { resolver } = await setup();
    expect(await resolver.resolve4("api.example.com")).toEqual([SIDECAR_ADDRESS]);
    expect(await resolver.resolve4("API.EXAMPLE.COM.")).toEqual([SIDECAR_ADDRESS]);
  });

  it("gets ENOTFOUND for an undeclared name, and the upstream hears nothing", async () => {
    const { h, resolver } = await setup();
    h.upstream.setA("undeclared.example.net", [PUBLIC_IP]);
    await expect(resolver.resolve4("undeclared.example.net")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(h.upstream.queries).toEqual([]);
    expect(h.ctx.sink.egress().map((e) => e.verdict)).toEqual(["block"]);
  });

  it("gets no IPv6 address for a declared name (NODATA, not an error that hides the A answer)", async () => {
    const { resolver } = await setup();
    await expect(resolver.resolve6("api.example.com")).rejects.toMatchObject({ code: "ENODATA" });
    await expect(resolver.resolve6("undeclared.example.net")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });

  it("gets a declared TXT record, including one too big for UDP (TC, then TCP)", async () => {
    const { h, resolver } = await setup();
    const chunks = Array.from({ length: 8 }, (_, i) => `${i}`.repeat(200));
    // dns-packet turns the strings of `data` into Buffers in place, so hand it a copy.
    h.upstream.set("big.svc.example.com", "TXT", { answers: [{ type: "TXT", name: "big.svc.example.com", ttl: 60, data: [...chunks] }] });
    expect(await resolver.resolveTxt("big.svc.example.com")).toEqual([chunks]);
    // c-ares asked twice: over UDP (answered with TC) and again over TCP; TXT is not cached.
    expect(h.ctx.sink.egress().map((e) => [e.recordType, e.verdict])).toEqual([["TXT", "allow"], ["TXT", "allow"]]);
  });

  it("gets ENOTFOUND for a rebinding answer", async () => {
    const { h, resolver } = await setup();
    h.upstream.setA("internal.svc.example.com", ["169.254.169.254"]);
    await expect(resolver.resolve4("internal.svc.example.com")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });
});
