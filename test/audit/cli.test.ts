import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore, auditPaths, loadSigner } from "../../src/audit/index.js";
import { hangar } from "../cli/capture-io.js";
import { egress, tamper, tempDir, toolCall } from "./support.js";

let temp: ReturnType<typeof tempDir>;
let dir: string;
let db: string;

beforeEach(() => {
  temp = tempDir();
  dir = join(temp.dir, ".hangar");
  db = join(dir, "audit.db");
});
afterEach(() => temp[Symbol.dispose]());

/** `hangar init`, then a log of `count` records written with the new key, anchor beside it. */
async function initAndWrite(count: number): Promise<void> {
  expect((await hangar(["init", "--dir", dir])).code).toBe(0);
  const paths = auditPaths(db);
  const store = AuditStore.open({ path: db, signer: loadSigner(paths.privateKey), anchorPath: paths.anchor, timer: false, checkpointEvery: { records: 4 } });
  for (let i = 1; i <= count; i++) store.append(i % 2 === 1 ? toolCall(i, { tool: "fetch" }) : egress(i, { tool: "fetch", name: `host${i}.example.com` }));
  store.close();
}

describe("hangar init", () => {
  it("creates the key pair, private key 0600, and refuses to overwrite it without --force", async () => {
    const first = await hangar(["init", "--dir", dir]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^created the audit signing key pair \(key id [0-9a-f]{16}\):\n/);
    expect(statSync(join(dir, "audit-signing.key")).mode & 0o777).toBe(0o600);
    const again = await hangar(["init", "--dir", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exist; .* Use --force to replace it anyway \[HANGAR_AUDIT_KEY_EXISTS\]/);
    const forced = await hangar(["init", "--dir", dir, "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^replaced/);
  });
});

describe("hangar audit verify", () => {
  it("exits 0 for an intact log and names what vouches for it", async () => {
    await initAndWrite(10);
    const run = await hangar(["audit", "verify", "--db", db]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toBe(`${db}: intact: 10 records, signed through record 10 (4 of 4 checkpoints valid), anchor at record 10 ok\n`);
  });

  it("exits 1 for a tampered log and names the first bad record", async () => {
    await initAndWrite(10);
    tamper(db, (h) => h.prepare("UPDATE records SET data = replace(data, 'hello 7', 'bye 7') WHERE seq = 7").run());
    const run = await hangar(["audit", "verify", "--db", db]);
    expect(run.code).toBe(1);
    expect(run.stdout.split("\n").slice(0, 2)).toEqual([`${db}: TAMPERED: first bad record is 7 (hash-mismatch)`, "  record 7 was altered: its content (seq, ts, kind, data or prevHash) does not match its hash"]);
    const json = await hangar(["audit", "verify", "--db", db, "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ db, ok: false, firstProblem: { seq: 7, code: "hash-mismatch" } });
  });

  it("exits 1 for a record with a prepended duplicate key, and query refuses it instead of hiding it", async () => {
    await initAndWrite(10);
    tamper(db, (h) => h.prepare(`UPDATE records SET data = '{"server":"decoy",' || substr(data, 2) WHERE seq = 7`).run());
    const run = await hangar(["audit", "verify", "--db", db]);
    expect(run.code).toBe(1);
    expect(run.stdout.split("\n")[0]).toBe(`${db}: TAMPERED: first bad record is 7 (non-canonical-record)`);
    expect(run.stdout.split("\n")[1]).toMatch(/^ {2}record 7 was altered: its stored data is not the canonical text that was hashed \(from character 3 it reads '\{"server":"decoy",/);
    const query = await hangar(["audit", "query", "--db", db, "--server", "everything"]);
    expect(query.code).toBe(2);
    expect(query.stderr).toContain(`record 7 has data that is not in canonical form, so it was altered outside Hangar; run: hangar audit verify --db ${db}`);
  });

  it("exits 2 when the log or the key is missing, and --unsigned checks the chain alone", async () => {
    const missing = await hangar(["audit", "verify", "--db", join(temp.dir, "nope.db"), "--unsigned"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no audit log at .*nope\.db \[HANGAR_AUDIT_UNREADABLE\]/);
    const store = AuditStore.open({ path: join(temp.dir, "plain.db") });
    store.append(toolCall(1));
    store.close();
    const noKey = await hangar(["audit", "verify", "--db", join(temp.dir, "plain.db")]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^hangar: no public key at .*audit-signing\.pub: pass --key <file>, or --unsigned/);
    const unsigned = await hangar(["audit", "verify", "--db", join(temp.dir, "plain.db"), "--unsigned"]);
    expect(unsigned.code).toBe(0);
    expect(unsigned.stdout).toContain("warning: signatures not checked: no public key given");
  });

  it("uses an explicit --key and --anchor", async () => {
    await initAndWrite(5);
    const run = await hangar(["audit", "verify", "--db", db, "--key", join(dir, "audit-signing.pub"), "--anchor", join(dir, "audit.anchor.json"), "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, anchor: { seq: 5, ok: true }, signatures: "checked" });
  });
});

describe("hangar audit query", () => {
  it("prints one line per matching record, or JSON", async () => {
    await initAndWrite(6);
    const run = await hangar(["audit", "query", "--db", db, "--kind", "egress", "--tool", "fetch"]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\s+2 {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}egress {5}everything → host2\.example\.com:443 allow \[declared-host\] during fetch by alice$/);
    expect(run.stderr).toBe("3 records\n");
    const json = JSON.parse((await hangar(["audit", "query", "--db", db, "--identity", "alice", "--limit", "2", "--json"])).stdout) as { count: number; records: { seq: number; hash: string }[] };
    expect(json.count).toBe(2);
    expect(json.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(json.records[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("rejects bad filters as usage errors", async () => {
    await initAndWrite(1);
    const kind = await hangar(["audit", "query", "--db", db, "--kind", "egres"]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/^hangar: --kind "egres": expected one or more of tool-call, egress, lifecycle, approval, policy\nUsage: hangar audit query/);
    const since = await hangar(["audit", "query", "--db", db, "--since", "last tuesday"]);
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/"last tuesday" is not a time/);
  });
});

describe("hangar audit export", () => {
  it("writes JSON lines or OCSF to a file or standard output", async () => {
    await initAndWrite(4);
    const out = join(temp.dir, "export.jsonl");
    const toFile = await hangar(["audit", "export", "--db", db, "--format", "jsonl", "--out", out]);
    expect(toFile).toMatchObject({ code: 0, stdout: "", stderr: `exported 4 records as jsonl to ${out}\n` });
    expect(readFileSync(out, "utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4]);
    const ocsf = await hangar(["audit", "export", "--db", db, "--format", "ocsf", "--kind", "tool-call"]);
    expect(ocsf.code).toBe(0);
    expect(ocsf.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { class_uid: number }).class_uid)).toEqual([6003, 6003]);
  });

  it("requires a known --format", async () => {
    expect((await hangar(["audit", "export", "--db", db])).stderr).toMatch(/^hangar: --format is required: jsonl or ocsf/);
    expect((await hangar(["audit", "export", "--db", db, "--format", "csv"])).code).toBe(2);
  });
});

describe("help", () => {
  it("lists init and the audit verbs, and every verb has --help", async () => {
    const root = await hangar(["--help"]);
    expect(root.stdout).toMatch(/\n {2}init +Create the Hangar directory/);
    expect(root.stdout).toMatch(/\n {2}audit verify +Check the audit log/);
    for (const argv of [["init"], ["audit"], ["audit", "verify"], ["audit", "query"], ["audit", "export"]]) {
      const run = await hangar([...argv, "--help"]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: hangar ${argv.join(" ")}`));
    }
  });
});

describe("the hangar process", () => {
  it("exits 0, 1 and 2 from audit verify as documented", async () => {
    await initAndWrite(3);
    const run = promisify(execFile);
    const verify = async (args: string[]): Promise<number> => {
      try {
        await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "audit", "verify", ...args]);
        return 0;
      } catch (err) {
        return (err as { code?: number }).code ?? -1;
      }
    };
    expect(await verify(["--db", db])).toBe(0);
    tamper(db, (h) => h.prepare("DELETE FROM records WHERE seq = 2").run());
    expect(await verify(["--db", db])).toBe(1);
    expect(await verify(["--db", join(temp.dir, "missing.db")])).toBe(2);
  });
});
