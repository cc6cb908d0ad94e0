import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { chainRecord, genesisHash, recordHash, recordPreimage, sha256Hex } from "../../src/core/audit/hash-chain.js";

describe("the hash chain", () => {
  it("hashes exactly canonical({ data, kind, prevHash, seq, ts, v })", () => {
    const fields = { seq: 3, ts: "2025-01-01T00:00:00.000Z", kind: "policy", dataJson: canonicalJson({ action: "x", "é": "ü" }), prevHash: "ab".repeat(32) };
    const expected = canonicalJson({ data: { action: "x", "é": "ü" }, kind: "policy", prevHash: fields.prevHash, seq: 3, ts: fields.ts, v: 1 });
    expect(recordPreimage(fields)).toBe(expected);
    expect(recordHash(fields)).toBe(sha256Hex(expected));
    expect(recordHash(fields)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("binds the genesis to the log id, so two logs never share a chain start", () => {
    expect(genesisHash("log-a")).not.toBe(genesisHash("log-b"));
    expect(genesisHash("log-a")).toBe(sha256Hex('{"logId":"log-a","type":"hangar-audit-genesis","v":1}'));
  });

  it("links each record to the previous hash and numbers it densely", () => {
    const genesis = { seq: 0, hash: genesisHash("log") };
    const one = chainRecord(genesis, { ts: "2025-01-01T00:00:00.000Z", kind: "lifecycle", data: { server: "s", action: "ready", skipped: undefined } });
    const two = chainRecord(one.record, { ts: "2025-01-01T00:00:01.000Z", kind: "lifecycle", data: { server: "s", action: "dead" } });
    expect(one.record).toMatchObject({ seq: 1, prevHash: genesis.hash });
    expect(two.record).toMatchObject({ seq: 2, prevHash: one.record.hash });
    expect(one.dataJson).toBe('{"action":"ready","server":"s"}');
    // The returned data is what is stored, not the caller's object.
    expect(one.record.data).toEqual({ action: "ready", server: "s" });
    expect(JSON.parse(JSON.stringify(one.record))).toEqual({ ...one.record, data: { action: "ready", server: "s" } });
  });

  it("changes the hash when any field changes", () => {
    const base = { seq: 1, ts: "2025-01-01T00:00:00.000Z", kind: "policy", dataJson: '{"a":1}', prevHash: "0".repeat(64) };
    const h = recordHash(base);
    for (const change of [{ seq: 2 }, { ts: "2025-01-01T00:00:00.001Z" }, { kind: "approval" }, { dataJson: '{"a":2}' }, { prevHash: "1".repeat(64) }]) {
      expect(recordHash({ ...base, ...change })).not.toBe(h);
    }
  });
});
