import { describe, expect, it } from "vitest";
import { HangarError, isHangarError } from "../../../src/core/errors.js";
import { NameLedger } from "../../../src/sidecar/dns/name-ledger.js";
import type { AddressAnswer, AddressSource } from "../../../src/sidecar/dns/upstream-client.js";

/** A programmable upstream that counts calls and can hold answers until released. */
class ScriptedSource implements AddressSource {
  calls: string[] = [];
  answers = new Map<string, AddressAnswer | Error>();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  async resolveA(name: string): Promise<AddressAnswer> {
    this.calls.push(name);
    if (this.gate !== undefined) await this.gate;
    const a = this.answers.get(name) ?? { rcode: "NOERROR", ips: ["23.45.67.89"], ttl: 60 };
    if (a instanceof Error) throw a;
    return a;
  }
}

function setup(options: Partial<ConstructorParameters<typeof NameLedger>[0]> = {}) {
  let now = 1_000_000;
  const source = new ScriptedSource();
  const ledger = new NameLedger({ upstream: source, now: () => now, ...options });
  return { ledger, source, advance: (ms: number) => (now += ms), now: () => now };
}

describe("NameLedger", () => {
  it("caches until the TTL expires (injected clock), then asks again", async () => {
    const { ledger, source, advance, now } = setup();
    const first = await ledger.resolve("api.example.com");
    expect(first).toEqual({ name: "api.example.com", ips: ["23.45.67.89"], expiresAt: now() + 60_000 });
    advance(59_999);
    await ledger.resolve("API.example.com.");
    expect(ledger.lookupCached("api.example.com")?.ips).toEqual(["23.45.67.89"]);
    expect(source.calls).toHaveLength(1);
    advance(1);
    expect(ledger.lookupCached("api.example.com")).toBeUndefined();
    await ledger.resolve("api.example.com");
    expect(source.calls).toHaveLength(2);
  });

  it("clamps TTLs into [min, max]", async () => {
    const { ledger, source, now } = setup({ minTtlSeconds: 10, maxTtlSeconds: 100 });
    source.answers.set("zero.example.com", { rcode: "NOERROR", ips: ["23.1.1.1"], ttl: 0 });
    source.answers.set("long.example.com", { rcode: "NOERROR", ips: ["23.1.1.2"], ttl: 86_400 });
    expect((await ledger.resolve("zero.example.com")).expiresAt).toBe(now() + 10_000);
    expect((await ledger.resolve("long.example.com")).expiresAt).toBe(now() + 100_000);
  });

  it("coalesces concurrent lookups of one name into one upstream query", async () => {
    const { ledger, source } = setup();
    source.hold();
    const all = Promise.all([ledger.resolve("api.example.com"), ledger.resolve("API.EXAMPLE.COM"), ledger.resolve("api.example.com.")]);
    await new Promise((r) => setTimeout(r, 5));
    source.release();
    const results = await all;
    expect(source.calls).toEqual(["api.example.com"]);
    expect(new Set(results.map((r) => r.expiresAt)).size).toBe(1);
  });

  it("shares a failure among coalesced callers and does not cache it", async () => {
    const { ledger, source } = setup();
    source.answers.set("api.example.com", new HangarError("HANGAR_DNS_UPSTREAM", "all servers failed"));
    source.hold();
    const a = ledger.resolve("api.example.com");
    const b = ledger.resolve("api.example.com");
    source.release();
    await expect(a).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_DNS_UPSTREAM"));
    await expect(b).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_DNS_UPSTREAM"));
    source.answers.delete("api.example.com");
    expect((await ledger.resolve("api.example.com")).ips).toEqual(["23.45.67.89"]);
    expect(source.calls).toHaveLength(2);
  });

  it("caches NXDOMAIN briefly and throws HANGAR_DNS_UPSTREAM with rcode NXDOMAIN", async () => {
    const { ledger, source, advance } = setup({ maxNegativeTtlSeconds: 30 });
    source.answers.set("gone.example.com", { rcode: "NXDOMAIN", ips: [], ttl: 3600 });
    for (let i = 0; i < 2; i++) {
      await expect(ledger.resolve("gone.example.com")).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_DNS_UPSTREAM") && e.data["rcode"] === "NXDOMAIN");
    }
    expect(source.calls).toHaveLength(1);
    expect(ledger.lookupCached("gone.example.com")).toBeUndefined();
    advance(30_000);
    await expect(ledger.resolve("gone.example.com")).rejects.toThrow();
    expect(source.calls).toHaveLength(2);
  });

  it("is bounded: the oldest entry is evicted", async () => {
    const { ledger } = setup({ maxEntries: 2 });
    await ledger.resolve("a.example.com");
    await ledger.resolve("b.example.com");
    await ledger.resolve("c.example.com");
    expect(ledger.entries().map((e) => e.name)).toEqual(["b.example.com", "c.example.com"]);
    expect(ledger.size).toBe(2);
  });

  it("rejects a name that is not a host name, without asking upstream", async () => {
    const { ledger, source } = setup();
    await expect(ledger.resolve("not a name")).rejects.toSatisfy((e) => isHangarError(e, "HANGAR_DNS_UPSTREAM"));
    await expect(ledger.resolve("10.0.0.1")).rejects.toThrow();
    expect(source.calls).toEqual([]);
  });
});
