import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditStore, queryAuditLog, verifyAuditLog } from "../../src/audit/index.js";
import type { AuditEntry } from "../../src/core/audit/audit-record.js";
import { AuditWriter } from "../../src/gateway/audit-writer.js";
import { silentLogger } from "../../src/log.js";
import { tempDir, toolCall } from "./support.js";

describe("AuditWriter: deferred entries", () => {
  it("builds a deferred entry when its batch is appended, in queue order with the plain ones, and the chain verifies", () => {
    using temp = tempDir();
    const path = join(temp.dir, "audit.db");
    const writer = new AuditWriter(AuditStore.open({ path, timer: false }), silentLogger(), 1000, 60_000);
    const built: number[] = [];
    const deferred = (i: number) => (): AuditEntry => {
      built.push(i);
      return toolCall(i);
    };
    writer.write(toolCall(1));
    writer.writeDeferred(deferred(2));
    writer.write(toolCall(3));
    writer.writeDeferred(deferred(4));
    // Nothing is built while the caller waits: only on the append.
    expect(built).toEqual([]);
    writer.flush();
    expect(built).toEqual([2, 4]);
    writer.close();
    const { records } = queryAuditLog(path, {});
    expect(records.map((r) => (r.data as { callId: string }).callId)).toEqual(["call-1", "call-2", "call-3", "call-4"]);
    expect(verifyAuditLog(path).ok).toBe(true);
  });

  it("keeps the place of a builder that throws with an audit-entry-failed record, and the rest of its batch", () => {
    using temp = tempDir();
    const path = join(temp.dir, "audit.db");
    const writer = new AuditWriter(AuditStore.open({ path, timer: false }), silentLogger(), 1000, 60_000);
    writer.write(toolCall(1));
    writer.writeDeferred(() => {
      throw new Error("summary failed");
    });
    writer.writeDeferred(() => toolCall(3));
    writer.close();
    const { records } = queryAuditLog(path, {});
    expect(records.map((r) => r.kind)).toEqual(["tool-call", "policy", "tool-call"]);
    expect(records[1]!.data).toEqual({ action: "audit-entry-failed", detail: { error: "summary failed" } });
    expect(writer.failedBatches).toBe(0);
  });

  it("flushes deferred entries on its own once maxBatch are queued", () => {
    using temp = tempDir();
    const path = join(temp.dir, "audit.db");
    const writer = new AuditWriter(AuditStore.open({ path, timer: false }), silentLogger(), 3, 60_000);
    for (let i = 1; i <= 3; i++) writer.writeDeferred(() => toolCall(i));
    expect(queryAuditLog(path, {}).records).toHaveLength(3);
    writer.close();
  });
});
