import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseBaselineText } from "../../src/baseline/load-baseline.js";
import { createBaselineRecordCommand } from "../../src/cli/commands/baseline-record.js";
import { createReplayCommand } from "../../src/cli/commands/replay.js";
import type { Command } from "../../src/cli/command.js";
import type { DriftReport } from "../../src/core/baseline/drift-report.js";
import type { AttributedEgressEvent } from "../../src/core/baseline/observation.js";
import { hangar } from "../cli/capture-io.js";
import { makeTestPki } from "../support/tls.js";
import { DockerTestEnv, realSidecarSourceExists, ROOT } from "./support/docker-test-env.js";
import { runCommand, scenarioDeps, startUpstream } from "./support/replay-services.js";

/**
 * The postmark Bcc over HTTPS, as a new user would meet it: the mail fixture posts to
 * https://api.mail.test/email, an upstream of ours with its own CA, which hangar.yaml declares
 * in runtime.upstreamCaFile; the policy inspects that host (`inspect: true`). A v1 baseline is
 * recorded and frozen; v4, which only adds a `bcc` field, fails replay naming the field, the
 * tool and the destination, and live in ENFORCING none of its mails reaches the upstream while
 * v1's do. The upstream's own counter is the witness.
 */
const FIXTURE = join(ROOT, "test/fixtures/mail-server");
const SCENARIO = join(FIXTURE, "send-mail.yaml");
const API = "api.mail.test";

let env: DockerTestEnv;
let record: Command;
let replay: Command;
let dir: string;
let config: string;
let frozenFile: string;
let api: Awaited<ReturnType<typeof startUpstream>>;

const readEvents = async (file: string): Promise<AttributedEgressEvent[]> =>
  (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AttributedEgressEvent);

const posts = (events: readonly AttributedEgressEvent[]): AttributedEgressEvent[] => events.filter((e) => e.type === "egress" && e.phase === "decide" && e.name === API);

/** The fixture's version `v` posting to the HTTPS API, which the sidecar inspects. */
async function writePolicy(name: string, v: 1 | 4): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  const policy = {
    version: 1,
    // Its own name: a baseline of its own, and an image tag apart from the plain-HTTP test's.
    name: "mail-https",
    server: { build: { context: join(FIXTURE, "image") }, env: { MAIL_SERVER_VERSION: String(v), MAIL_API_URL: `https://${API}/email` } },
    egress: { mode: "enforcing", allow: [{ host: API, ports: [443], inspect: true }] },
  };
  await writeFile(file, stringify(policy));
  return file;
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const deps = await scenarioDeps(env);
  record = createBaselineRecordCommand(deps);
  replay = createReplayCommand(deps);
  dir = await env.stateRoot();
  frozenFile = join(dir, "mail-https-v1.baseline.json");
  const pki = await makeTestPki([API]);
  api = await startUpstream(env, API, { tls: pki });
  // hangar.yaml as an operator writes it: the API's CA beside it, named relative to the file.
  await writeFile(join(dir, "mail-api-ca.pem"), pki.caCert);
  const egress = await env.egressNetwork();
  config = join(dir, "hangar.yaml");
  await writeFile(
    config,
    stringify({
      version: 1,
      runtime: {
        egressNetwork: egress.name,
        trustedUpstreamRanges: egress.subnets.map((s) => s.subnet),
        upstreamResolvers: await env.upstreamResolvers(),
        sidecar: { image: env.sidecarImage },
        upstreamCaFile: "./mail-api-ca.pem",
      },
    }),
  );
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe.runIf(realSidecarSourceExists())("the postmark Bcc over HTTPS: an inspected API with its own CA", () => {
  it("records v1 in capture: each inspected request's shape (names, never values), attributed to send_email; frozen", async () => {
    const eventsFile = join(dir, "record-v1.jsonl");
    const result = await runCommand(record, [await writePolicy("v1", 1), "--scenario", SCENARIO, "--out", frozenFile, "--events", eventsFile, "--config", config]);
    expect(result.stderr).toMatch(/baseline written to/);
    expect(result.code).toBe(0);
    const loaded = parseBaselineText(await readFile(frozenFile, "utf8"), frozenFile);
    if (!loaded.ok) throw new Error("the recorded baseline does not load");
    expect(loaded.baseline.destinations.map((d) => [`${d.name}:${d.port}`, d.count, d.tools])).toEqual([[`${API}:443`, 3, ["send_email"]]]);
    expect(loaded.baseline.destinations[0]?.requests).toEqual([expect.objectContaining({ method: "POST", path: "/email", bodyFields: ["body", "of", "part", "subject", "to"] })]);
    const events = await readEvents(eventsFile);
    // TLS was terminated with the sandbox CA: the request inside it was seen, on port 443.
    expect(posts(events)).toHaveLength(3);
    for (const e of posts(events)) expect(e).toMatchObject({ port: 443, sni: API, method: "POST", pathTemplate: "/email", bodyKind: "json", attribution: { tools: ["send_email"] } });
    expect(JSON.stringify(events)).not.toContain("alice@example.org");
    expect(await api.count()).toBe(0);

    expect((await hangar(["baseline", "freeze", frozenFile])).code).toBe(0);
    expect(JSON.parse(await readFile(frozenFile, "utf8"))).toMatchObject({ status: "frozen" });
  });

  it("replaying v1 exits 0; replaying v4 exits 1, its report naming bcc, send_email and the destination", async () => {
    const v1 = await runCommand(replay, [await writePolicy("v1", 1), "--scenario", SCENARIO, "--baseline", frozenFile, "--config", config]);
    expect(v1.stdout).toMatch(/^OK: replay of .* of mail-https behaves as its baseline/);
    expect(v1.code).toBe(0);

    const v4 = await writePolicy("v4", 4);
    const json = await runCommand(replay, [v4, "--scenario", SCENARIO, "--baseline", frozenFile, "--json", "--config", config]);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as DriftReport;
    expect(report.drifts).toEqual([expect.objectContaining({ code: "new-request-field", subject: `${API}:443`, tools: ["send_email"] })]);
    const text = await runCommand(replay, [v4, "--scenario", SCENARIO, "--baseline", frozenFile, "--quiet", "--config", config]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/new-request-field +send_email sent body field bcc to POST api\.mail\.test\/email, never seen in the baseline/);
    expect(await api.count()).toBe(0);
  });

  it("live, ENFORCING: no request carrying bcc reaches the upstream, while v1's mails arrive over verified TLS", async () => {
    const before = await api.count();
    const eventsFile = join(dir, "v4-live.jsonl");
    const v4 = await runCommand(replay, [await writePolicy("v4", 4), "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile, "--config", config]);
    expect(v4.code).toBe(1);
    // Every v4 mail carries bcc: the upstream's own counter did not move.
    expect(await api.count()).toBe(before);
    const refused = posts(await readEvents(eventsFile));
    expect(refused).toHaveLength(3);
    for (const e of refused) expect(e).toMatchObject({ verdict: "block", reasons: ["drift-new-request-field"], driftFields: ["body bcc"], sni: API, attribution: { tools: ["send_email"] } });

    const v1 = await runCommand(replay, [await writePolicy("v1", 1), "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--config", config]);
    expect(v1.stdout).toMatch(/^OK: /);
    expect(v1.code).toBe(0);
    expect((await api.count()) - before).toBe(3);
    // Re-originated by the sidecar over TLS, verified against the declared CA, with the declared name.
    expect((await api.seen()).slice(-3)).toEqual([0, 1, 2].map(() => expect.objectContaining({ host: API, url: "/email", tls: true })));
  });

  it("without runtime.upstreamCaFile the upstream's certificate does not verify: v1's mails are refused, none arrives", async () => {
    const bare = join(dir, "hangar-no-ca.yaml");
    await writeFile(bare, (await readFile(config, "utf8")).replace(/^ {2}upstreamCaFile: .*\n/m, ""));
    expect(await readFile(bare, "utf8")).not.toContain("upstreamCaFile");
    const before = await api.count();
    const eventsFile = join(dir, "v1-no-ca.jsonl");
    const v1 = await runCommand(replay, [await writePolicy("v1", 1), "--scenario", SCENARIO, "--baseline", frozenFile, "--egress", "live", "--events", eventsFile, "--config", bare]);
    expect(v1.stderr).toMatch(/could not send to alice@example\.org: the mail API answered 502/);
    expect(await api.count()).toBe(before);
    const closes = (await readEvents(eventsFile)).filter((e) => e.type === "egress" && e.phase === "close" && e.name === API);
    expect(closes.length).toBeGreaterThan(0);
    for (const e of closes) expect(e).toMatchObject({ verdict: "block", reasons: ["upstream-certificate"] });
  });
});
