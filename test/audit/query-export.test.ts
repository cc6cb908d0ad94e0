import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditStore, exportAuditLog, queryAuditLog } from "../../src/audit/index.js";
import type { ToolCallData } from "../../src/core/audit/audit-record.js";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { genesisHash, recordHash } from "../../src/core/audit/hash-chain.js";
import { egress, manualClock, tempDir, testKeys, toolCall } from "./support.js";

/**
 * A small forensic scene: alice calls fetch on `everything`, which connects to api.example.com;
 * bob calls search on `github`, which tries an undeclared host; then lifecycle, approval and
 * policy records. One record per minute from 12:00.
 */
const keys = testKeys();
let temp: ReturnType<typeof tempDir>;
let db: string;

beforeAll(() => {
  temp = tempDir();
  db = join(temp.dir, "audit.db");
  const clock = manualClock();
  const store = AuditStore.open({ path: db, signer: keys.signer, now: clock.now, timer: false });
  const entries = [
    toolCall(1, { server: "everything", tool: "fetch", identity: "alice" }), // 12:00
    egress(1, { server: "everything", tool: "fetch", identity: "alice", name: "api.example.com" }), // 12:01
    egress(1, { server: "everything", tool: "fetch", identity: "alice", name: "api.example.com", phase: "close" }), // 12:02
    toolCall(2, { server: "github", tool: "search", identity: "bob" }), // 12:03
    egress(2, { server: "github", tool: "search", identity: "bob", name: "evil.example.net", verdict: "block" }), // 12:04
    egress(3, { server: "github", name: "evil.example.net", type: "dns", verdict: "block" }), // 12:05, no call in flight
    { kind: "lifecycle" as const, data: { server: "github", action: "restarted", state: "READY" } }, // 12:06
    { kind: "approval" as const, data: { approvalId: "ap-1", server: "github", action: "grant" as const, identity: "carol", pins: { image: "sha256:abc" } } }, // 12:07
    { kind: "policy" as const, data: { action: "manifest-drift", server: "github", tool: "search", detail: { changed: ["description"] } } }, // 12:08
  ];
  for (const entry of entries) {
    store.append(entry);
    clock.advance(60_000);
  }
  store.close();
});
afterAll(() => temp[Symbol.dispose]());

const seqs = (filter: Parameters<typeof queryAuditLog>[1]): number[] => queryAuditLog(db, filter).records.map((r) => r.seq);

describe("queryAuditLog", () => {
  it("returns everything in seq order without filters", () => {
    expect(seqs({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("filters by server, across every kind", () => {
    expect(seqs({ server: "github" })).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it("filters by tool: the calls and the egress attributed to them", () => {
    expect(seqs({ tool: "fetch" })).toEqual([1, 2, 3]);
    expect(seqs({ tool: "search" })).toEqual([4, 5, 9]);
  });

  it("filters by identity: callers, approvers, and attributed egress", () => {
    expect(seqs({ identity: "bob" })).toEqual([4, 5]);
    expect(seqs({ identity: "carol" })).toEqual([8]);
  });

  it("filters by kind and time, inclusive at both ends", () => {
    expect(seqs({ kinds: ["egress"] })).toEqual([2, 3, 5, 6]);
    expect(seqs({ kinds: ["approval", "policy"] })).toEqual([8, 9]);
    expect(seqs({ since: "2025-03-01T12:03:00.000Z", until: "2025-03-01T12:05:00.000Z" })).toEqual([4, 5, 6]);
  });

  it("answers the forensic question: what did tool T of server S connect to, for whom, when", () => {
    const { records } = queryAuditLog(db, { server: "everything", tool: "fetch", kinds: ["egress"] });
    const answers = records.map((r) => {
      const d = r.data as { event: { name: string; port: number; verdict: string; phase: string }; attribution: { calls: { identity: string }[] } };
      return [r.ts, d.event.name, d.event.port, d.event.verdict, d.event.phase, d.attribution.calls.map((c) => c.identity)];
    });
    expect(answers).toEqual([
      ["2025-03-01T12:01:00.000Z", "api.example.com", 443, "allow", "decide", ["alice"]],
      ["2025-03-01T12:02:00.000Z", "api.example.com", 443, "allow", "close", ["alice"]],
    ]);
  });

  it("combines filters and honours a limit", () => {
    expect(seqs({ server: "github", kinds: ["egress"], limit: 1 })).toEqual([5]);
    expect(seqs({ server: "nobody" })).toEqual([]);
    expect(seqs({ tool: "search", limit: 2 })).toEqual([4, 5]);
    expect(seqs({ server: "github", limit: 0 })).toEqual([]);
  });

  it("matches values that need escaping, and data with integer-like keys", () => {
    const path = join(temp.dir, "odd.db");
    const store = AuditStore.open({ path });
    store.append({ kind: "tool-call", data: { ...(toolCall(1).data as ToolCallData), server: 'a "quoted"\\ server', arguments: { "10": "x", "9": "y", b: 1 } } });
    store.append(toolCall(2, { server: "plain" }));
    store.close();
    const found = queryAuditLog(path, { server: 'a "quoted"\\ server' }).records;
    expect(found.map((r) => r.seq)).toEqual([1]);
    expect((found[0]?.data as { arguments: unknown }).arguments).toEqual({ "10": "x", "9": "y", b: 1 });
    expect(queryAuditLog(path, { server: "plain" }).records.map((r) => r.seq)).toEqual([2]);
  });
});

describe("exportAuditLog", () => {
  function exported(format: "jsonl" | "ocsf", filter = {}): Record<string, unknown>[] {
    let text = "";
    exportAuditLog(db, { format, filter }, (chunk) => void (text += chunk));
    expect(text.endsWith("\n")).toBe(true);
    return text.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("jsonl: one record per line with hashes, and the chain re-checks from the export alone", () => {
    const lines = exported("jsonl");
    expect(lines).toHaveLength(9);
    let prev = genesisHash(lines[0]?.["logId"] as string);
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(["logId", "seq", "ts", "kind", "data", "prevHash", "hash"]);
      expect(line["prevHash"]).toBe(prev);
      const hash = recordHash({ seq: line["seq"] as number, ts: line["ts"] as string, kind: line["kind"] as string, dataJson: canonicalJson(line["data"]), prevHash: prev });
      expect(line["hash"]).toBe(hash);
      prev = hash;
    }
  });

  it("ocsf: every line is an OCSF event of the documented class", () => {
    const events = exported("ocsf");
    expect(events.map((e) => [e["class_uid"], e["activity_id"], e["type_uid"]])).toEqual([
      [6003, 99, 600399], // tool call → API Activity
      [4001, 1, 400101], // egress decide allow → Network Activity: Open
      [4001, 2, 400102], // egress close → Network Activity: Close
      [6003, 99, 600399],
      [4001, 5, 400105], // egress block → Refuse
      [4003, 1, 400301], // dns → DNS Activity: Query
      [6002, 5, 600205], // lifecycle restarted → Application Lifecycle: Restart
      [0, 99, 99], // approval → Base Event
      [0, 99, 99], // policy → Base Event
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ metadata: { version: "1.3.0", product: { name: "Hangar", vendor_name: "Hangar" } } });
      expect(typeof e["time"]).toBe("number");
      expect((e["unmapped"] as { hangar: { hash: string } }).hangar.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(events[0]).toMatchObject({ actor: { user: { name: "alice" } }, api: { operation: "fetch", service: { name: "everything" }, request: { uid: "call-1" } }, status_id: 1 });
    expect(events[4]).toMatchObject({ dst_endpoint: { hostname: "evil.example.net", port: 443 }, action_id: 2, action: "Denied", severity_id: 3, unmapped: { hangar: { attribution: [{ tool: "search", identity: "bob" }] } } });
    expect(events[2]).toMatchObject({ traffic: { bytes_out: 100, bytes_in: 2000 }, duration: 40 });
    expect(events[5]).toMatchObject({ query: { hostname: "evil.example.net", type: "A" }, rcode_id: 3 });
  });

  it("applies the query filters", () => {
    expect(exported("jsonl", { kinds: ["lifecycle"] }).map((l) => l["seq"])).toEqual([7]);
  });

  it("streams large logs in chunks", () => {
    const big = join(temp.dir, "big.db");
    const store = AuditStore.open({ path: big });
    store.appendBatch(Array.from({ length: 2000 }, (_, i) => toolCall(i)));
    store.close();
    const chunks: string[] = [];
    const { count } = exportAuditLog(big, { format: "jsonl" }, (c) => chunks.push(c));
    expect(count).toBe(2000);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join("").split("\n")).toHaveLength(2001);
    expect(readFileSync(big).length).toBeGreaterThan(0);
  });
});
