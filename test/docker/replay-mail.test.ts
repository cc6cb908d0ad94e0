import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseBaselineText } from "../../src/baseline/load-baseline.js";
import { createBaselineRecordCommand } from "../../src/cli/commands/baseline-record.js";
import { createReplayCommand } from "../../src/cli/commands/replay.js";
import type { Baseline } from "../../src/core/baseline/baseline-schema.js";
import type { DriftReport } from "../../src/core/baseline/drift-report.js";
import type { AttributedEgressEvent } from "../../src/core/baseline/observation.js";
import type { Command } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/run-cli.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { parseXml, walk } from "../baseline/support/xml.js";
import { captureIo, hangar } from "../cli/capture-io.js";
import { DockerTestEnv, realSidecarSourceExists, ROOT } from "./support/docker-test-env.js";
import { runCommand, scenarioDeps, startUpstream } from "./support/replay-services.js";

/**
 * Issue 4's end-to-end story on the mail-server fixture (test/fixtures/mail-server), modelled
 * on postmark-mcp: record a baseline of v1, freeze it, and replay v1 (match), v2 (a quiet
 * copy to collector.evil.test) and v3 (ten times the connections). Replays run in capture:
 * nothing leaves, and the upstreams' own counters prove it.
 */
const run = promisify(execFile);
const FIXTURE = join(ROOT, "test/fixtures/mail-server");
const SCENARIO = join(FIXTURE, "send-mail.yaml");
const policyOf = (v: 1 | 2 | 3 | 4): string => join(FIXTURE, `mail-v${v}.yaml`);

let env: DockerTestEnv;
let record: Command;
let replay: Command;
let dir: string;
let frozenFile: string;
let api: Awaited<ReturnType<typeof startUpstream>>;
let collector: Awaited<ReturnType<typeof startUpstream>>;

const readEvents = async (file: string): Promise<AttributedEgressEvent[]> =>
  (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AttributedEgressEvent);

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const deps = await scenarioDeps(env);
  record = createBaselineRecordCommand(deps);
  replay = createReplayCommand(deps);
  dir = await env.stateRoot();
  frozenFile = join(dir, "mail-v1.baseline.json");
  api = await startUpstream(env, "api.mail.test");
  collector = await startUpstream(env, "collector.evil.test");
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe.runIf(realSidecarSourceExists())("baseline record and replay on the mail fixture", () => {
  it("records v1 through the scenario in capture, every connection attributed to send_email, and freezes it", async () => {
    const eventsFile = join(dir, "record-v1.jsonl");
    const result = await runCommand(record, [policyOf(1), "--scenario", SCENARIO, "--out", frozenFile, "--events", eventsFile]);
    expect(result.stderr).toMatch(/baseline written to/);
    expect(result.code).toBe(0);
    const loaded = parseBaselineText(await readFile(frozenFile, "utf8"), frozenFile);
    if (!loaded.ok) throw new Error("the recorded baseline does not load");
    const baseline: Baseline = loaded.baseline;
    expect(baseline).toMatchObject({ server: "mail", status: "learning" });
    expect(baseline.destinations.map((d) => [`${d.name}:${d.port}`, d.count, d.tools])).toEqual([["api.mail.test:80", 3, ["send_email"]]]);
    expect(baseline.tools.map((t) => [t.name, t.calls, t.destinations])).toEqual([
      ["list_templates", 1, []],
      ["send_email", 3, ["api.mail.test:80"]],
    ]);
    const events = await readEvents(eventsFile);
    const posts = events.filter((e) => e.type === "egress" && e.phase === "decide");
    expect(posts).toHaveLength(3);
    for (const e of posts) expect(e).toMatchObject({ name: "api.mail.test", method: "POST", url: "/email", verdict: "block", attribution: { tools: ["send_email"] } });
    // Capture records each request's shape (names, never values): the baseline learns the route and its fields.
    for (const e of posts) expect(e).toMatchObject({ pathTemplate: "/email", bodyKind: "json", bodyFields: ["body", "of", "part", "subject", "to"] });
    expect(JSON.stringify(events)).not.toContain("alice@example.org");
    expect(baseline.destinations[0]?.requests).toEqual([expect.objectContaining({ method: "POST", path: "/email", bodyFields: ["body", "of", "part", "subject", "to"] })]);
    // Capture: nothing reached the upstream.
    expect(await api.count()).toBe(0);

    const freeze = await hangar(["baseline", "freeze", frozenFile]);
    expect(freeze.code).toBe(0);
    expect(JSON.parse(await readFile(frozenFile, "utf8"))).toMatchObject({ status: "frozen" });
  });

  it("replaying v1 against its frozen baseline exits 0", async () => {
    const result = await runCommand(replay, [policyOf(1), "--scenario", SCENARIO, "--baseline", frozenFile]);
    expect(result.stdout).toMatch(/^OK: replay of .* of mail behaves as its baseline/);
    expect(result.code).toBe(0);
  });

  it("replaying v2 exits 1, naming collector.evil.test and send_email; --junit writes JUnit XML, --json the report", async () => {
    const junit = join(dir, "v2.junit.xml");
    const result = await runCommand(replay, [policyOf(2), "--scenario", SCENARIO, "--baseline", frozenFile, "--junit", junit]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^DRIFT: /);
    const line = result.stdout.split("\n").find((l) => l.includes("new-destination"));
    expect(line).toMatch(/HIGH +new-destination +send_email connected to collector\.evil\.test:80, which the baseline never saw/);
    expect(result.stdout).toMatch(/new-egress-from-tool|collector\.evil\.test/);

    const xml = parseXml(await readFile(junit, "utf8"));
    expect(xml.name).toBe("testsuites");
    const failures = [...walk(xml)].filter((e) => e.name === "failure");
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.map((f) => f.text).join("\n")).toMatch(/send_email connected to collector\.evil\.test:80/);
    expect(await collector.count()).toBe(0);

    const json = await runCommand(replay, [policyOf(2), "--scenario", SCENARIO, "--baseline", frozenFile, "--json", "--quiet"]);
    expect(json.code).toBe(1);
    expect(json.stderr).toBe("");
    const report = JSON.parse(json.stdout) as DriftReport;
    expect(report.ok).toBe(false);
    expect(report.drifts).toContainEqual(expect.objectContaining({ code: "new-destination", subject: "collector.evil.test:80", tools: ["send_email"] }));
  });

  it("replaying v4 (postmark-mcp 1.0.16: only a bcc field more) exits 1, naming bcc, send_email and the destination", async () => {
    const result = await runCommand(replay, [policyOf(4), "--scenario", SCENARIO, "--baseline", frozenFile, "--json"]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as DriftReport;
    expect(report.drifts).toEqual([expect.objectContaining({ code: "new-request-field", subject: "api.mail.test:80", tools: ["send_email"] })]);
    const text = await runCommand(replay, [policyOf(4), "--scenario", SCENARIO, "--baseline", frozenFile, "--quiet"]);
    expect(text.stdout).toMatch(/new-request-field +send_email sent body field bcc to POST api\.mail\.test\/email, never seen in the baseline/);
    expect(await api.count()).toBe(0);
  });

  it("replaying v3 exits 1, naming the rate drift on api.mail.test", async () => {
    const result = await runCommand(replay, [policyOf(3), "--scenario", SCENARIO, "--baseline", frozenFile, "--json"]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as DriftReport;
    expect(report.drifts).toEqual([
      expect.objectContaining({ code: "rate-exceeded", kind: "destination", subject: "api.mail.test:80", tools: ["send_email"], observed: 30, limit: 9 }),
    ]);
    const text = await runCommand(replay, [policyOf(3), "--scenario", SCENARIO, "--baseline", frozenFile, "--quiet"]);
    expect(text.stdout).toMatch(/rate-exceeded +send_email opened 30 connections a minute to api\.mail\.test:80, above 3x the baseline's highest of 3/);
  });

  it("Ctrl-C mid-scenario: the replay stops with one line (exit 2) and its sandbox is removed", async () => {
    let handler: ((signal: string) => void) | undefined;
    let stderr = "";
    const io = {
      out: () => undefined,
      err: (text: string) => {
        stderr += text;
        if (text.includes("call 1/4")) handler?.("SIGINT");
      },
      env: {},
      onSignal: (h: (signal: string) => void) => ((handler = h), () => (handler = undefined)),
    };
    const code = await runCli(["replay", policyOf(1), "--scenario", SCENARIO, "--baseline", frozenFile], io, { commands: [replay] });
    expect(code).toBe(2);
    expect(stderr).toMatch(/SIGINT: stopping; the sandbox is being removed/);
    expect(stderr).toMatch(/^hangar: interrupted by SIGINT \[HANGAR_CLOSED\]/m);
    expect(stderr).not.toMatch(/call 2\/4/);
    expect(handler).toBeUndefined();
    expect(await env.engine.listContainers({ labels: selectorTerms({ server: "mail", run: env.run }) })).toEqual([]);
  });
});

describe("replay's inputs: errors are clear lines, never stack traces", () => {
  it("a scenario with a typo: the real process exits 2 with file:line:col and a suggestion", async () => {
    const typo = join(FIXTURE, "send-mail-typo.yaml");
    const spawned = await spawnHangar(["replay", policyOf(1), "--scenario", typo, "--baseline", join(ROOT, "test/fixtures/baselines/postmark-v1-frozen.json")]);
    expect(spawned.code).toBe(2);
    expect(spawned.stderr).toBe(`${typo}:5:5: calls[0].repat: unknown key "repat"; did you mean "repeat"?\n`);
    expect(spawned.stdout).toBe("");
    const recorded = await runCommand(record, [policyOf(1), "--scenario", typo]);
    expect(recorded.code).toBe(1);
    expect(recorded.stderr).toMatch(/send-mail-typo\.yaml:5:5: calls\[0\]\.repat: unknown key "repat"; did you mean "repeat"\?\n$/);
  });

  it("a learning baseline, or another server's, is refused before anything starts", async () => {
    const learning = await runCommand(replay, [policyOf(1), "--scenario", SCENARIO, "--baseline", join(ROOT, "test/fixtures/baselines/postmark-v1.json")]);
    expect(learning.code).toBe(2);
    expect(learning.stderr).toMatch(/is a learning baseline; replay compares with a frozen one/);
    const other = await runCommand(replay, [policyOf(1), "--scenario", SCENARIO, "--baseline", join(ROOT, "test/fixtures/baselines/postmark-v1-frozen.json")]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/is the baseline of server postmark, but .*mail-v1\.yaml runs mail/);
    const egress = await runCommand(replay, [policyOf(1), "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "offline"]);
    expect(egress.code).toBe(2);
    expect(egress.stderr).toMatch(/^hangar: --egress "offline" is not an egress mode; expected capture or live/);
  });

  it.runIf(realSidecarSourceExists())("a scenario naming a tool the server lacks exits 2, positioned, with a suggestion, and makes no call", async () => {
    const scenario = join(dir, "misnamed.yaml");
    await writeFile(scenario, "calls:\n  - tool: send_mail\n    arguments: { to: a@example.org, subject: hi }\n");
    const result = await runCommand(replay, [policyOf(1), "--scenario", scenario, "--baseline", frozenFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${scenario}:2:11: calls[0].tool: "send_mail" is not a tool of this server; did you mean "send_email"?\n`);
    expect(result.stderr).not.toMatch(/call 1\/1/);
  });
});

describe.runIf(realSidecarSourceExists())("a server that dies", () => {
  it("before answering initialize: exit 2, its stderr shown, and one line saying so", async () => {
    const policy = await writePolicy("broken", 1, "");
    await writeFile(policy, (await readFile(policy, "utf8")).replace('MAIL_SERVER_VERSION: "1"', 'MAIL_SERVER_VERSION: "9"'));
    const io = captureIo();
    const code = await runCli(["replay", policy, "--scenario", SCENARIO, "--baseline", frozenFile], io, { commands: [replay] });
    expect(code).toBe(2);
    expect(io.stderr()).toMatch(/^\[mail\] mail-server: unknown version "9"; expected 1, 2, 3 or 4$/m);
    expect(io.stderr()).toMatch(/^hangar: mail exited with code 2 during the MCP initialize; its stderr above may say why \[HANGAR_GATEWAY_UPSTREAM\]/m);
    expect(await env.engine.listContainers({ labels: selectorTerms({ server: "mail", run: env.run }) })).toEqual([]);
  });
});

async function spawnHangar(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT, env: { ...process.env, HANGAR_DEBUG: "" } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** A policy for the fixture's version `v` in `dir`, with the given egress section (YAML lines). */
async function writePolicy(name: string, v: 1 | 2 | 3 | 4, egress: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `version: 1\nname: mail\nserver:\n  build: { context: ${JSON.stringify(join(FIXTURE, "image"))} }\n  env: { MAIL_SERVER_VERSION: "${v}" }\n${egress}`);
  return file;
}

describe.runIf(realSidecarSourceExists())("live runs of the mail fixture with the frozen baseline in the sidecar", () => {
  const wildcard = (mode: string): string => `egress:\n  mode: ${mode}\n  allow:\n    - host: "*.test"\n      ports: [80]\n`;

  it("ENFORCING, v2, a policy allowing *.test: the mails reach the API, the collector receives nothing", async () => {
    const policy = await writePolicy("v2-enforcing", 2, wildcard("enforcing"));
    const eventsFile = join(dir, "v2-enforcing.jsonl");
    const [apiBefore, collectorBefore] = [await api.count(), await collector.count()];
    const result = await runCommand(replay, [policy, "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile]);
    expect(result.code).toBe(1);
    expect(await collector.count()).toBe(collectorBefore);
    expect((await api.count()) - apiBefore).toBe(3);
    const events = await readEvents(eventsFile);
    const refused = events.filter((e) => e.name === "collector.evil.test" && e.phase === "decide");
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) expect(e).toMatchObject({ verdict: "block", attribution: { tools: ["send_email"] } });
    expect(refused[0]!.reasons.some((r) => r.startsWith("drift-"))).toBe(true);
    expect(events.filter((e) => e.name === "api.mail.test" && e.type === "egress" && e.phase === "decide").every((e) => e.verdict === "allow")).toBe(true);
    expect(result.stdout).toMatch(/send_email .*collector\.evil\.test/);
  });

  it("OBSERVING, v2: the collector receives the copy, and a would-block event names the drift", async () => {
    const policy = await writePolicy("v2-observing", 2, wildcard("observing"));
    const eventsFile = join(dir, "v2-observing.jsonl");
    const collectorBefore = await collector.count();
    const result = await runCommand(replay, [policy, "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile]);
    expect(result.code).toBe(1);
    expect((await collector.count()) - collectorBefore).toBe(3);
    const events = await readEvents(eventsFile);
    const connection = events.find((e) => e.type === "egress" && e.phase === "decide" && e.name === "collector.evil.test");
    expect(connection).toMatchObject({ verdict: "would-block", port: 80, reasons: expect.arrayContaining(["drift-new-destination"]), attribution: { tools: ["send_email"] } });
    const lookup = events.find((e) => e.type === "dns" && e.name === "collector.evil.test");
    expect(lookup).toMatchObject({ verdict: "would-block", reasons: ["drift-new-dns-name"] });
  });

  it("ENFORCING, v4: no request carrying bcc reaches the API, while v1's mails still arrive", async () => {
    const policy = await writePolicy("v4-enforcing", 4, wildcard("enforcing"));
    const eventsFile = join(dir, "v4-enforcing.jsonl");
    const apiBefore = await api.count();
    const result = await runCommand(replay, [policy, "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile]);
    expect(result.code).toBe(1);
    expect(await api.count()).toBe(apiBefore);
    const refused = (await readEvents(eventsFile)).filter((e) => e.type === "egress" && e.phase === "decide" && e.name === "api.mail.test");
    expect(refused).toHaveLength(3);
    for (const e of refused) expect(e).toMatchObject({ verdict: "block", reasons: ["drift-new-request-field"], driftFields: ["body bcc"], attribution: { tools: ["send_email"] } });

    const v1 = await writePolicy("v1-enforcing", 1, wildcard("enforcing"));
    const ok = await runCommand(replay, [v1, "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live"]);
    expect(ok.code).toBe(0);
    expect((await api.count()) - apiBefore).toBe(3);
  });

  it("baseline to-policy, pasted into a policy, lets v1 run in ENFORCING with no blocks", async () => {
    const rules = await hangar(["baseline", "to-policy", frozenFile]);
    expect(rules.code).toBe(0);
    expect(rules.stdout).toMatch(/- host: api\.mail\.test\n +ports: \[80\]/);
    const policy = await writePolicy("v1-to-policy", 1, rules.stdout);
    const lint = await hangar(["policy", "lint", policy]);
    expect(lint).toMatchObject({ code: 0, stdout: "" });
    const eventsFile = join(dir, "v1-to-policy.jsonl");
    const apiBefore = await api.count();
    const result = await runCommand(replay, [policy, "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile]);
    expect(result.stdout).toMatch(/^OK: /);
    expect(result.code).toBe(0);
    expect((await api.count()) - apiBefore).toBe(3);
    const events = await readEvents(eventsFile);
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((e) => e.verdict !== "allow")).toEqual([]);
  });
});
