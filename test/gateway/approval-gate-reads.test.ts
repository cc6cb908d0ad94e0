import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditStore } from "../../src/audit/audit-store.js";
import type { AuditEntry } from "../../src/core/audit/audit-record.js";
import type { Approval } from "../../src/core/gateway/approvals.js";
import { runPins } from "../../src/core/gateway/source-pins.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";
import { ApprovalGate } from "../../src/gateway/approval-gate.js";
import { approvalDecisionEntry, approvalRequestEntry, readApprovals } from "../../src/gateway/approval-ledger.js";
import { AuditWriter } from "../../src/gateway/audit-writer.js";
import { silentLogger } from "../../src/log.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const pins = runPins(PolicySchema.parse({ version: 1, name: "fx", server: { npm: { package: "fixture", version: "1.0.0" } } }));
const pending = (id: string): Approval => ({ id, server: "fx", status: "pending", pins, requestedBy: "alice", requestedAt: "", seq: 1, grantedTools: {} });
const toolCall = (i: number): AuditEntry => ({ kind: "tool-call", data: { callId: `c${i}`, identity: "alice", server: "fx", tool: "echo", arguments: {}, durationMs: 1, outcome: "ok" } });

function gateOn(path: string): { gate: ApprovalGate; writer: AuditWriter; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const writer = new AuditWriter(AuditStore.open({ path, timer: false }), silentLogger(), 1000, 60_000);
  return { gate: new ApprovalGate(writer, () => clock.t, silentLogger(), 1000), writer, clock };
}

describe("ApprovalGate re-reads only what the log gained", () => {
  it("sees a grant, then a revoke, written among many other records, as a full read of the log does", () => {
    const dir = mkdtempSync(join(tmpdir(), "hangar-gate-"));
    dirs.push(dir);
    const path = join(dir, "audit.db");
    const { gate, writer, clock } = gateOn(path);
    writer.write(approvalRequestEntry("apr-1", "fx", "alice", pins));
    expect(gate.check("fx", pins).status).toBe("unapproved");
    for (let i = 0; i < 500; i++) writer.write(toolCall(i));
    writer.write(approvalDecisionEntry(pending("apr-1"), "grant", "bob"));
    for (let i = 500; i < 1000; i++) writer.write(toolCall(i));
    clock.t += 1000;
    expect(gate.check("fx", pins).status).toBe("approved");
    writer.write(approvalDecisionEntry({ ...pending("apr-1"), status: "granted" }, "revoke", "bob"));
    clock.t += 1000;
    expect(gate.check("fx", pins).status).toBe("unapproved");
    writer.flush();
    // The same approvals as folding the whole log at once.
    expect(readApprovals(path).get("apr-1")?.status).toBe("revoked");
    writer.close();
  });

  it("reads another log at the same path from its start", () => {
    const dir = mkdtempSync(join(tmpdir(), "hangar-gate-"));
    dirs.push(dir);
    const first = join(dir, "first.db");
    const { gate, writer, clock } = gateOn(first);
    writer.write(approvalRequestEntry("apr-1", "fx", "alice", pins));
    writer.write(approvalDecisionEntry(pending("apr-1"), "grant", "bob"));
    for (let i = 0; i < 50; i++) writer.write(toolCall(i));
    expect(gate.check("fx", pins).status).toBe("approved");
    writer.close();
    // A fresh log (a new id, a shorter head) replaces the file: its one grant sits at seq 2.
    rmSync(first);
    for (const suffix of ["-wal", "-shm"]) rmSync(`${first}${suffix}`, { force: true });
    const replacement = new AuditWriter(AuditStore.open({ path: first, timer: false }), silentLogger(), 1000, 60_000);
    replacement.write(approvalRequestEntry("apr-2", "fx", "carol", pins));
    replacement.flush();
    clock.t += 1000;
    expect(gate.check("fx", pins).status).toBe("unapproved");
    replacement.write(approvalDecisionEntry(pending("apr-2"), "grant", "bob"));
    replacement.flush();
    clock.t += 1000;
    const check = gate.check("fx", pins);
    expect(check.status).toBe("approved");
    expect(check.status === "approved" ? check.approval.id : undefined).toBe("apr-2");
    replacement.close();
  });
});
