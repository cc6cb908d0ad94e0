import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditStore, queryAuditLog } from "../../src/audit/index.js";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { egressEntry, toolCallEntry } from "../../src/core/audit/entries.js";
import { REDACTED } from "../../src/core/audit/redaction.js";
import type { EgressEvent } from "../../src/core/events.js";
import { tempDir } from "./support.js";

describe("toolCallEntry", () => {
  const secretValues = ["ghp_SECRETSECRET"];

  it("redacts arguments, result preview and error before anything reaches the log", () => {
    const entry = toolCallEntry(
      {
        callId: "c1",
        identity: "alice",
        session: "s",
        server: "github",
        tool: "create_issue",
        arguments: { title: "bug", token: "anything", body: "my token is ghp_SECRETSECRET" },
        result: { content: [{ type: "text", text: "echo ghp_SECRETSECRET" }] },
        durationMs: 12,
        outcome: "error",
        error: "401 for ghp_SECRETSECRET",
      },
      { secretValues },
    );
    expect(entry).toEqual({
      kind: "tool-call",
      data: {
        callId: "c1",
        identity: "alice",
        session: "s",
        server: "github",
        tool: "create_issue",
        arguments: { title: "bug", token: REDACTED, body: `my token is ${REDACTED}` },
        result: { isError: false, contentTypes: { text: 1 }, textBytes: 21, preview: `echo ${REDACTED}` },
        durationMs: 12,
        outcome: "error",
        error: `401 for ${REDACTED}`,
      },
    });
  });

  it("produces entries the store accepts, with no secret in the file's records", () => {
    using temp = tempDir();
    const path = join(temp.dir, "audit.db");
    const store = AuditStore.open({ path });
    store.append(toolCallEntry({ callId: "c", identity: "a", server: "s", tool: "t", arguments: { password: "hunter2", q: "ghp_SECRETSECRET" }, durationMs: 1, outcome: "ok" }, { secretValues }));
    store.close();
    const text = canonicalJson(queryAuditLog(path, {}).records);
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("ghp_SECRET");
  });
});

describe("egressEntry", () => {
  it("keeps the event (every field it knows), its time as the record's, and the attributed calls", () => {
    const event: EgressEvent = { v: 1, ts: "2025-03-01T12:00:00.123Z", id: "e1", type: "egress", phase: "decide", server: "everything", verdict: "block", reasons: ["undeclared-host"], name: "evil.example.net", port: 443, protocol: "tls" };
    expect(egressEntry(event, [{ callId: "c1", tool: "fetch", identity: "alice" }])).toEqual({
      kind: "egress",
      ts: "2025-03-01T12:00:00.123Z",
      data: { server: "everything", event, attribution: { calls: [{ callId: "c1", tool: "fetch", identity: "alice" }] } },
    });
  });
});
