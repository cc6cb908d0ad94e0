import { afterEach, describe, expect, it } from "vitest";
import type { BaselineView } from "../../../src/core/decision.js";
import { DEFAULT_TUNNELLING_LIMITS } from "../../../src/core/tunnelling.js";
import { PUBLIC_IP, SIDECAR_ADDRESS, TcpDnsClient, aData, encodeQuery, rcode, startHarness, udpQuery, type Harness, type HarnessOptions } from "./helpers.js";

/**
 * OBSERVING is the rollout mode, but a lookup is itself egress: the name reaches whoever
 * serves its zone. So OBSERVING never asks upstream about a name the policy refuses
 * (undeclared, an undeclared record type, a tunnelling signal); it answers NXDOMAIN (or NODATA)
 * and records would-block. Only baseline drift on a declared name still flows.
 */
const POLICY: HarnessOptions["policy"] = {
  allow: [{ host: "api.example.com" }, { host: "*.svc.example.com" }],
  dns: { recordTypes: ["A", "TXT", "HTTPS"] },
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function observing(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  h = await startHarness({ policy: POLICY, mode: "observing", ...options });
  // The upstream would answer anything: a forwarded name would come back with an address.
  h.upstream.setDefault((q) => ({ answers: q.type === "A" ? [{ type: "A", name: q.name, ttl: 60, data: PUBLIC_IP }] : [] }));
  return h;
}

describe("DnsServer in OBSERVING: a name the policy refuses never reaches upstream", () => {
  it("answers an undeclared name NXDOMAIN, records would-block, and the upstream resolver receives nothing", async () => {
    const { port, upstream, ctx } = await observing();
    const reply = await udpQuery(port, "exfil.example.net");
    expect(rcode(reply)).toBe("NXDOMAIN");
    expect(reply.answers).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.name === "exfil.example.net");
    expect(event).toMatchObject({ type: "dns", verdict: "would-block", reasons: ["undeclared-host"], recordType: "A" });
    expect(event.ip).toBeUndefined();
    expect(upstream.queriesFor("exfil.example.net")).toEqual([]);
    expect(upstream.queries).toEqual([]);
  });

  it("holds over TCP and for every record type the policy answers", async () => {
    const { port, upstream, ctx } = await observing();
    const tcp = await TcpDnsClient.connect(port);
    try {
      tcp.send(encodeQuery("data.example.net", "A", { id: 1 }));
      const [reply] = await tcp.waitReplies(1);
      expect(rcode(reply!)).toBe("NXDOMAIN");
    } finally {
      tcp.close();
    }
    // dns-packet spells HTTPS (type 65) UNKNOWN_65.
    for (const type of ["TXT", "UNKNOWN_65", "AAAA"]) expect(rcode(await udpQuery(port, "data.example.net", type))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
    const events = ctx.sink.egress().filter((e) => e.name === "data.example.net");
    expect(events.map((e) => e.recordType)).toEqual(["A", "TXT", "HTTPS", "AAAA"]);
    for (const e of events) expect(e.reasons).toContain("undeclared-host");
    expect(events.filter((e) => e.recordType !== "AAAA").every((e) => e.verdict === "would-block")).toBe(true);
  });

  it("does not forward a record type the policy leaves out, even for a declared name (NODATA, would-block)", async () => {
    const { port, upstream, ctx } = await observing({ policy: { ...POLICY, dns: { recordTypes: ["A"] } } });
    const reply = await udpQuery(port, "c2VjcmV0.svc.example.com", "TXT");
    expect(rcode(reply)).toBe("NOERROR");
    expect(reply.answers).toEqual([]);
    expect(upstream.queries).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.recordType === "TXT");
    expect(event).toMatchObject({ verdict: "would-block", reasons: ["undeclared-record-type"] });
  });

  it("does not forward a tunnelling-looking name under a declared wildcard", async () => {
    const { port, upstream, ctx } = await observing();
    const name = "a8f3k2j9x7q1m5n4b6v0c8z2l4p7r9t1y3w5e.svc.example.com";
    expect(rcode(await udpQuery(port, name))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
    const event = await ctx.sink.waitFor((e) => e.name === name);
    expect(event.verdict).toBe("would-block");
    expect(event.reasons).toContain("tunnel-entropy");
  });

  it("stops forwarding once distinct subdomains per minute pass the limit, as ENFORCING does", async () => {
    const { port, upstream, ctx } = await observing();
    ctx.setDecision({ ...ctx.decisionContext(), tunnelling: { ...DEFAULT_TUNNELLING_LIMITS, maxUniqueSubdomainsPerMinute: 2 } });
    const codes: string[] = [];
    for (const label of ["one", "two", "three", "four"]) codes.push(rcode(await udpQuery(port, `${label}.svc.example.com`)));
    expect(codes).toEqual(["NOERROR", "NOERROR", "NXDOMAIN", "NXDOMAIN"]);
    expect(upstream.queries.map((q) => q.name)).toEqual(["one.svc.example.com", "two.svc.example.com"]);
    expect(ctx.sink.egress().at(-1)).toMatchObject({ verdict: "would-block", reasons: expect.arrayContaining(["tunnel-unique-rate"]) });
  });

  it("still resolves a declared name that only drifts from the frozen baseline (what OBSERVING measures)", async () => {
    const baseline: BaselineView = { destinations: new Set(), names: new Set(), dnsNames: new Set(["api.example.com"]), rateTolerance: 2 };
    const { port, upstream, ctx } = await observing({ baseline });
    const reply = await udpQuery(port, "new.svc.example.com");
    expect(aData(reply)).toEqual([SIDECAR_ADDRESS]);
    expect(upstream.queriesFor("new.svc.example.com").map((q) => q.type)).toEqual(["A"]);
    const event = await ctx.sink.waitFor((e) => e.name === "new.svc.example.com");
    expect(event).toMatchObject({ verdict: "would-block", reasons: ["drift-new-dns-name"], ip: SIDECAR_ADDRESS });
    // NODATA, not NXDOMAIN, for its AAAA: the A is answered.
    expect(rcode(await udpQuery(port, "new.svc.example.com", "AAAA"))).toBe("NOERROR");
  });

  it("never forwards an undeclared name that drifts too (the policy refusal wins)", async () => {
    const baseline: BaselineView = { destinations: new Set(), names: new Set(), dnsNames: new Set(), rateTolerance: 2 };
    const { port, upstream } = await observing({ baseline });
    expect(rcode(await udpQuery(port, "evil.example.org"))).toBe("NXDOMAIN");
    expect(upstream.queries).toEqual([]);
  });
});
