import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_TUNNELLING_LIMITS, tunnellingSignals } from "../../../src/core/tunnelling.js";
import { encodeLabels, lowAlphabetName, payload } from "../../support/name-encoding.js";
import { PUBLIC_IP, rcode, startHarness, udpQuery, type Harness } from "./helpers.js";

/**
 * What a determined sender still gets out through names under a declared wildcard, with the
 * default limits: it knows every threshold (it runs our own tunnellingSignals before each
 * name), picks the encoding that packs the most bytes into a name no per-name signal refuses,
 * and sends as fast as the sidecar answers, minute after minute on an injected clock. What
 * counts is what reached our upstream resolver.
 */
const SUFFIX = "svc.example.com";
const L = DEFAULT_TUNNELLING_LIMITS;
/** From the limits: per minute, the bits-a-minute cap (or 60 names at the per-name cap); per budget window, the budget's names at the per-name cap. */
const CEILING_PER_MINUTE = Math.min(L.maxBitsPerMinute, L.maxUniqueSubdomainsPerMinute * L.maxBitsPerName) / 8;
const CEILING_PER_HOUR = (L.lookupBudget * L.maxBitsPerName) / 8;

// Encodings a sender might pick, all within DNS label rules.
const ENCODINGS = [
  { alphabet: "abcdefghijklmnopqrstuvwxyz", labelLength: 15 },
  { alphabet: "abcdefghijklmnopqrstuvwxyz0123456789", labelLength: 15 },
  { alphabet: "abcdefghijklmnop", labelLength: 15 },
  { alphabet: "ghijklmnop", labelLength: 24 },
  { alphabet: "0123456789abcdef", labelLength: 40 },
  { alphabet: "abcdefghijklmnopqrstuvwxyz234567", labelLength: 40 },
  { alphabet: "01", labelLength: 63 },
] as const;

const passes = (labels: string[]): boolean => tunnellingSignals(labels, {}, L).strong.length === 0;

/** The name carrying the most of `data` from `offset` that no per-name signal refuses. */
function biggestName(data: Buffer, offset: number): { name: string; bytes: number } {
  let best = { name: "", bytes: 0 };
  for (const { alphabet, labelLength } of ENCODINGS) {
    const labelsOf = (bytes: number): string[] => encodeLabels(data.subarray(offset, offset + bytes), alphabet, labelLength);
    // Binary search: more bytes make a longer name, never a safer one.
    let lo = 0;
    let hi = 64;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (passes(labelsOf(mid))) lo = mid;
      else hi = mid - 1;
    }
    if (lo > best.bytes) best = { name: `${labelsOf(lo).join(".")}.${SUFFIX}`, bytes: lo };
  }
  return best;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("the leak ceiling through DNS names under a declared wildcard", () => {
  it("refuses the low-alphabet encoding outright, upstream never asked", async () => {
    h = await startHarness({ policy: { allow: [{ host: `*.${SUFFIX}` }] } });
    h.upstream.setDefault({ answers: [] });
    const name = lowAlphabetName(SUFFIX, 7, 92);
    expect(rcode(await udpQuery(h.port, name))).toBe("NXDOMAIN");
    expect(h.upstream.queries).toEqual([]);
    expect(await h.ctx.sink.waitFor((e) => e.name === name)).toMatchObject({ verdict: "block", reasons: ["tunnel-bits"] });
  });

  it(`stays within ${CEILING_PER_MINUTE} B in any minute and ${CEILING_PER_HOUR} B an hour, measured at the upstream resolver over 2 hours`, async () => {
    let now = 1_700_000_000_000;
    h = await startHarness({ policy: { allow: [{ host: `*.${SUFFIX}` }] }, now: () => now });
    h.upstream.setDefault((q) => ({ answers: q.type === "A" ? [{ type: "A", name: q.name, ttl: 60, data: PUBLIC_IP }] : [] }));
    const data = payload(200_000, 3);
    const carried = new Map<string, { bytes: number; minute: number }>();
    let offset = 0;
    const minutes = 120;
    for (let minute = 0; minute < minutes; minute++) {
      // As fast as the sidecar answers, until it refuses; then the next minute.
      for (;;) {
        const { name, bytes } = biggestName(data, offset);
        if (rcode(await udpQuery(h.port, name)) !== "NOERROR") break;
        carried.set(name, { bytes, minute });
        offset += bytes;
      }
      now += 60_000;
    }
    // Only what reached the resolver left; each distinct name once.
    const reached = new Set(h.upstream.queries.map((q) => q.name.toLowerCase()));
    const perMinute = new Array<number>(minutes).fill(0);
    let total = 0;
    for (const [name, { bytes, minute }] of carried) {
      if (!reached.has(name)) continue;
      perMinute[minute]! += bytes;
      total += bytes;
    }
    const perHour = [0, 1].map((hour) => perMinute.slice(hour * 60, hour * 60 + 60).reduce((a, b) => a + b, 0));
    expect(Math.max(...perMinute)).toBeLessThanOrEqual(CEILING_PER_MINUTE);
    for (const hour of perHour) expect(hour).toBeLessThanOrEqual(CEILING_PER_HOUR);
    // The sender did push: every hour it got a budget's worth of names out, and no more.
    expect(reached.size).toBe(2 * L.lookupBudget);
    expect(total / minutes).toBeLessThanOrEqual(CEILING_PER_HOUR / 60);
    expect(total).toBeGreaterThan(0.8 * 2 * CEILING_PER_HOUR);
    // The refusals that stopped it are events: the per-minute bits, then the budget.
    const reasons = new Set(h.ctx.sink.egress().flatMap((e) => e.reasons));
    expect(reasons).toContain("tunnel-bits-rate");
    expect(reasons).toContain("tunnel-budget");
  });
});
