import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditStore, auditPaths, loadPublicKey, loadSigner, queryAuditLog, verifyAuditLog } from "../../src/audit/index.js";
import type { EgressData } from "../../src/core/audit/audit-record.js";
import { canonicalJson } from "../../src/core/audit/canonical-json.js";
import { egressEntry } from "../../src/core/audit/entries.js";
import { chainRecord, genesisHash } from "../../src/core/audit/hash-chain.js";
import { toOcsf } from "../../src/core/audit/ocsf.js";
import type { EgressEvent } from "../../src/core/events.js";
import { hangar } from "../cli/capture-io.js";
import { egress, tempDir, toolCall } from "./support.js";

/**
 * Egress records of the requests the sidecar sees: method, path template, query keys, header
 * and body field names, and the drift code, never a value. The record's canonical form is
 * pinned (golden), and logs that mix records from before this with records after it verify.
 */
const bcc: EgressEvent = {
  v: 1,
  ts: "2025-03-01T12:00:00.123Z",
  id: "e-bcc",
  type: "egress",
  phase: "decide",
  server: "mail",
  verdict: "block",
  reasons: ["drift-new-request-field"],
  rule: "api.mail.test",
  name: "api.mail.test",
  port: 443,
  protocol: "http",
  path: "transparent",
  sni: "api.mail.test",
  host: "api.mail.test",
  method: "POST",
  url: "/email?api_key=k3y-value&draft",
  pathTemplate: "/email",
  queryKeys: ["api_key", "draft"],
  headerNames: ["content-type", "x-postmark-server-token"],
  bodyKind: "json",
  bodyFields: ["Bcc", "Subject", "To"],
  driftFields: ["body Bcc"],
  client: "10.213.0.3",
};
const call = { callId: "c1", tool: "send_email", identity: "alice" };

describe("egress records of requests", () => {
  it("carry the method, path template, field names and the drift code; a URL keeps query keys, not their values", () => {
    const data = egressEntry(bcc, [call]).data as EgressData;
    expect(data.drift).toEqual(["new-request-field"]);
    expect(data.event).toMatchObject({ method: "POST", pathTemplate: "/email", queryKeys: ["api_key", "draft"], bodyFields: ["Bcc", "Subject", "To"], driftFields: ["body Bcc"], url: "/email?api_key&draft" });
    expect(canonicalJson(data)).not.toContain("k3y-value");
    // No drift: no drift field.
    expect(egressEntry({ ...bcc, verdict: "allow", reasons: ["declared-host"] }, []).data).not.toHaveProperty("drift");
  });

  it("keep only the fields they know: a value a sidecar adds under another name never reaches the log", () => {
    const leaky = { ...bcc, body: '{"To":"alice@example.org"}', headers: { authorization: "Bearer s3cr3t" } } as EgressEvent;
    const text = canonicalJson(egressEntry(leaky, [call]).data);
    expect(text).not.toContain("alice@example.org");
    expect(text).not.toContain("s3cr3t");
    expect(egressEntry(leaky, [call]).data).toEqual(egressEntry(bcc, [call]).data);
  });

  it("carry which secret leaked where, which credential shape, and which secret was substituted: names, never values", () => {
    const leak: EgressEvent = { ...bcc, reasons: ["secret-leak", "credential-pattern"], secretLeaks: ["MAIL_TOKEN sentinel in body"], credentials: ["aws-access-key"], injected: ["API_TOKEN"] };
    const data = egressEntry(leak, [call]).data as EgressData;
    expect(data.event).toMatchObject({ secretLeaks: ["MAIL_TOKEN sentinel in body"], credentials: ["aws-access-key"], injected: ["API_TOKEN"] });
    expect(data.attribution.calls).toEqual([call]);
  });

  it("golden: the canonical form and hash of a request record are fixed", () => {
    const entry = egressEntry(bcc, [call]);
    const { record, dataJson } = chainRecord({ seq: 0, hash: genesisHash("golden-log") }, { ts: entry.ts!, kind: entry.kind, data: entry.data });
    expect(dataJson).toBe(
      '{"attribution":{"calls":[{"callId":"c1","identity":"alice","tool":"send_email"}]},"drift":["new-request-field"],' +
        '"event":{"bodyFields":["Bcc","Subject","To"],"bodyKind":"json","client":"10.213.0.3","driftFields":["body Bcc"],' +
        '"headerNames":["content-type","x-postmark-server-token"],"host":"api.mail.test","id":"e-bcc","method":"POST","name":"api.mail.test",' +
        '"path":"transparent","pathTemplate":"/email","phase":"decide","port":443,"protocol":"http","queryKeys":["api_key","draft"],' +
        '"reasons":["drift-new-request-field"],"rule":"api.mail.test","server":"mail","sni":"api.mail.test","ts":"2025-03-01T12:00:00.123Z",' +
        '"type":"egress","url":"/email?api_key&draft","v":1,"verdict":"block"},"server":"mail"}',
    );
    expect(record).toMatchObject({ seq: 1, ts: "2025-03-01T12:00:00.123Z", kind: "egress" });
    expect(record.hash).toBe("551271d4a97d348d586a03ba66836568860ce2f357c00a70f0faedd899702d9f");
    // The same entry built twice, with its fields in another order, hashes the same.
    const shuffled = Object.fromEntries(Object.entries(bcc).reverse()) as unknown as EgressEvent;
    const again = egressEntry(shuffled, [call]);
    expect(chainRecord({ seq: 0, hash: genesisHash("golden-log") }, { ts: again.ts!, kind: again.kind, data: again.data }).record.hash).toBe(record.hash);
  });

  it("a log with records from before (the event whole, no drift field) and after verifies; query and export show the request", async () => {
    using temp = tempDir();
    const dir = join(temp.dir, ".hangar");
    const db = join(dir, "audit.db");
    expect((await hangar(["init", "--dir", dir])).code).toBe(0);
    const paths = auditPaths(db);
    const store = AuditStore.open({ path: db, signer: loadSigner(paths.privateKey), anchorPath: paths.anchor, timer: false, checkpointEvery: { records: 3 } });
    // As the previous egressEntry wrote them: the event whole, whatever it carried.
    store.append(toolCall(1, { tool: "send_email" }));
    store.append(egress(2, { tool: "send_email" }));
    const before = { ...bcc, id: "e-old", url: "/email", reasons: ["declared-host"], verdict: "allow", driftFields: undefined, extra: "a field no list knew" };
    store.append({ kind: "egress", data: { server: "mail", event: before as EgressEvent, attribution: { calls: [call] } } });
    // And as it writes them now.
    store.append(egressEntry(bcc, [call]));
    store.append(egressEntry({ ...bcc, id: "e-2", verdict: "allow", reasons: ["declared-host"], driftFields: undefined, bodyFields: ["Subject", "To"] } as EgressEvent, [call]));
    store.close();

    expect(verifyAuditLog(db, { publicKey: loadPublicKey(join(dir, "audit-signing.pub")) })).toMatchObject({ ok: true, records: 5, signedThrough: 5 });
    const cli = await hangar(["audit", "verify", "--db", db]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/: intact: 5 records, signed through record 5/);

    const query = await hangar(["audit", "query", "--db", db, "--kind", "egress", "--tool", "send_email"]);
    expect(query.code).toBe(0);
    const lines = query.stdout.trimEnd().split("\n");
    expect(lines[2]).toMatch(/mail → api\.mail\.test:443 POST \/email block \[drift-new-request-field\] new body Bcc during send_email by alice$/);
    expect(lines[3]).toMatch(/mail → api\.mail\.test:443 POST \/email allow \[declared-host\] fields Subject,To during send_email by alice$/);
    expect(query.stdout).not.toContain("k3y-value");

    const records = queryAuditLog(db, { kinds: ["egress"] }).records;
    const ocsf = toOcsf(records.at(-2)!, { logId: "log" });
    expect(ocsf["unmapped"]).toMatchObject({ hangar: { method: "POST", pathTemplate: "/email", bodyFields: ["Bcc", "Subject", "To"], drift: ["new-request-field"], driftFields: ["body Bcc"] } });
  });
});
