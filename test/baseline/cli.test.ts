import { copyFile, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hangar } from "../cli/capture-io.js";

const FIXTURES = "test/fixtures/baselines";
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-baseline-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("hangar baseline", () => {
  it("is listed in hangar --help, with its verbs", async () => {
    const run = await hangar(["--help"]);
    expect(run.stdout).toContain("baseline freeze");
    expect(run.stdout).toContain("baseline to-policy");
  });

  it("suggests the verb a typo meant", async () => {
    const run = await hangar(["baseline", "frezee", "x.json"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "hangar baseline frezee"; did you mean "freeze"?');
  });
});

describe("hangar baseline show", () => {
  it("summarises a baseline", async () => {
    const run = await hangar(["baseline", "show", `${FIXTURES}/postmark-v1-frozen.json`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        "Baseline for postmark: frozen at 2025-03-02T09:00:00.000Z; rate tolerance 2x",
        "Observed from 2025-03-01T10:00:00.000Z to 2025-03-01T10:00:40.000Z (1 minute): 9 events, 4 tool calls",
        "",
        "Destinations (1)",
        "  api.mail.test:443  tls  3 connections, at most 3 a minute (p95 3), 2.9 KiB up, 600 B down; from send_email",
        "",
        "DNS lookups (1)",
        "  api.mail.test  A  3 queries; from send_email",
        "",
        "Tools (2)",
        "  list_templates  1 call, 1 a minute on average (p95 1, max 1); makes no connections",
        "  send_email      3 calls, 3 a minute on average (p95 3, max 3); reaches api.mail.test:443",
        "",
      ].join("\n"),
    );
  });

  it("prints a broken file's issues, not a stack trace, and exits 1", async () => {
    const file = join(dir, "broken.json");
    await writeFile(file, '{ "version": 1, "server": "postmark", "status": "frozn" }');
    const run = await hangar(["baseline", "show", file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`${file}:1:49: status: "frozn" is not a status; expected "learning" or "frozen"\n`);
    expect(run.stderr).toContain(`${file}:1:1: rateTolerance: missing required key "rateTolerance"\n`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("hangar baseline diff", () => {
  it("exits 1 and shows what changed", async () => {
    const run = await hangar(["baseline", "diff", `${FIXTURES}/postmark-v1-frozen.json`, `${FIXTURES}/postmark-v2.json`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      [
        `--- ${FIXTURES}/postmark-v1-frozen.json (postmark, frozen at 2025-03-02T09:00:00.000Z)`,
        `+++ ${FIXTURES}/postmark-v2.json (postmark, learning)`,
        "status: frozen -> learning",
        "destinations:",
        "  + collector.evil.test:443 (tls; from send_email; at most 3 a minute)",
        "dns:",
        "  + collector.evil.test A",
        "tools:",
        "  ~ send_email: destinations [api.mail.test:443] -> [api.mail.test:443, collector.evil.test:443]",
        "",
      ].join("\n"),
    );
  });

  it("exits 0 when only the status differs", async () => {
    const run = await hangar(["baseline", "diff", `${FIXTURES}/postmark-v1.json`, `${FIXTURES}/postmark-v1-frozen.json`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("no behavioural differences\n(status: learning -> frozen)\n");
  });

  it("--json prints one parseable document", async () => {
    const run = await hangar(["baseline", "diff", "--json", `${FIXTURES}/postmark-v1-frozen.json`, `${FIXTURES}/postmark-v2.json`]);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout) as { files: { a: string; b: string }; same: boolean; destinations: { added: { name: string }[] } };
    expect(doc.files.b).toBe(`${FIXTURES}/postmark-v2.json`);
    expect(doc.same).toBe(false);
    expect(doc.destinations.added.map((d) => d.name)).toEqual(["collector.evil.test"]);
  });

  it("exits 2 when a file is not a baseline", async () => {
    const run = await hangar(["baseline", "diff", `${FIXTURES}/postmark-v1.json`, `${FIXTURES}/missing.json`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`${FIXTURES}/missing.json: no such file\n`);
  });
});

describe("hangar baseline freeze", () => {
  it("freezes in place, atomically, leaving no temporary file and the file's mode", async () => {
    const file = join(dir, "postmark.json");
    await copyFile(`${FIXTURES}/postmark-v1.json`, file);
    await chmod(file, 0o640);
    const run = await hangar(["baseline", "freeze", file, "--at", "2025-03-02T09:00:00Z"]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(`${file}: frozen at 2025-03-02T09:00:00.000Z (1 destinations, 1 DNS lookups, 2 tools)\n`);
    expect(await readFile(file, "utf8")).toBe(await readFile(`${FIXTURES}/postmark-v1-frozen.json`, "utf8"));
    expect(await readdir(dir)).toEqual(["postmark.json"]);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it("leaves an already frozen baseline alone", async () => {
    const file = join(dir, "postmark.json");
    await copyFile(`${FIXTURES}/postmark-v1-frozen.json`, file);
    const before = await stat(file);
    const run = await hangar(["baseline", "freeze", file]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(`${file}: already frozen at 2025-03-02T09:00:00.000Z; left unchanged\n`);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
  });

  it("keeps a symlinked baseline a symlink", async () => {
    const target = join(dir, "real.json");
    const link = join(dir, "link.json");
    await copyFile(`${FIXTURES}/postmark-v1.json`, target);
    await symlink(target, link);
    expect((await hangar(["baseline", "freeze", link, "--at", "2025-03-02T09:00:00Z"])).code).toBe(0);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await readFile(target, "utf8"))).toMatchObject({ status: "frozen" });
  });

  it("refuses a time it cannot read, and an invalid file, without writing", async () => {
    const file = join(dir, "postmark.json");
    await copyFile(`${FIXTURES}/postmark-v1.json`, file);
    const bad = await hangar(["baseline", "freeze", file, "--at", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split("\n")[0]).toBe('hangar: --at "soon" is not a time; use ISO 8601, e.g. 2025-01-31T12:00:00Z');
    await writeFile(file, "{}");
    const invalid = await hangar(["baseline", "freeze", file]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(`${file}:1:1: version: missing required key "version"`);
    expect(await readFile(file, "utf8")).toBe("{}");
  });
});

describe("hangar baseline to-policy", () => {
  it("prints the egress section", async () => {
    const run = await hangar(["baseline", "to-policy", `${FIXTURES}/postmark-v1-frozen.json`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("egress:\n  allow:\n    - host: api.mail.test\n      ports: [443]\n");
  });

  it("what it prints passes hangar policy lint once pasted into a policy", async () => {
    const rules = (await hangar(["baseline", "to-policy", `${FIXTURES}/postmark-v2.json`])).stdout;
    const policy = join(dir, "postmark.yaml");
    await writeFile(policy, `version: 1\nname: postmark\nserver:\n  image:\n    ref: hangar-fixture/mail:2\n${rules}`);
    const lint = await hangar(["policy", "lint", policy]);
    expect(lint.stderr).toBe("1 file checked: no errors\n");
    expect(lint.code).toBe(0);
  });
});
