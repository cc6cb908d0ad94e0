import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQuarantineCommand } from "../../src/cli/commands/quarantine.js";
import type { Command } from "../../src/cli/command.js";
import type { QuarantineReport } from "../../src/quarantine/quarantine-report.js";
import { PROBE_HOST } from "../../src/quarantine/sample-arguments.js";
import { DockerTestEnv, realSidecarSourceExists, ROOT } from "./support/docker-test-env.js";
import { runCommand, scenarioDeps, startUpstream } from "./support/replay-services.js";

/**
 * `hangar quarantine`: deny-all plus capture. A real server from npm, named directly
 * (npm:pkg@version), with no scenario: every tool is called with arguments generated from
 * its schema, and the report shows where each tried to go. The mail fixture's v2, from its
 * policy: the quiet copy to collector.evil.test shows up, and nothing leaves (the upstreams'
 * own counters stay at zero).
 */
const EVERYTHING = "npm:@modelcontextprotocol/server-everything@2026.8.31";
const FIXTURE = join(ROOT, "test/fixtures/mail-server");

let env: DockerTestEnv;
let quarantine: Command;
let dir: string;

beforeAll(async () => {
  env = await DockerTestEnv.create();
  quarantine = createQuarantineCommand(await scenarioDeps(env));
  dir = await env.stateRoot();
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe.runIf(realSidecarSourceExists())("hangar quarantine", () => {
  it("server-everything (npm:, no scenario): the report shows gzip-file-as-resource tried to reach the URL host it was given", async () => {
    const reportFile = join(dir, "everything.json");
    const result = await runCommand(quarantine, [EVERYTHING, "--report", reportFile]);
    expect(result.stderr).toMatch(/report written to/);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, "utf8")) as QuarantineReport;
    expect(report).toMatchObject({ target: EVERYTHING, server: "quarantine-server-everything", calls: "generated" });
    expect(report.summary.toolsCalled).toBeGreaterThan(5);

    const gzip = report.tools.find((t) => t.name === "gzip-file-as-resource");
    expect(gzip?.calls[0]?.arguments).toMatchObject({ data: `http://${PROBE_HOST}/gzip-file-as-resource/data` });
    expect(gzip?.attempts).toContainEqual(
      expect.objectContaining({ name: PROBE_HOST, port: 80, protocol: "http", host: PROBE_HOST, method: "GET", target: "/gzip-file-as-resource/data", path: "transparent" }),
    );
    expect(gzip?.dns).toContainEqual(expect.objectContaining({ name: PROBE_HOST, type: "A" }));
    // The probe host is the only destination, and only that tool went there.
    expect(report.summary.toolsWithEgress).toEqual(["gzip-file-as-resource"]);
    expect(report.summary.destinations).toEqual([`${PROBE_HOST}:80`]);
  });

  it("the mail fixture's v2 (a policy, Markdown and HTML reports): send_email tried api.mail.test and collector.evil.test; nothing arrived", async () => {
    const api = await startUpstream(env, "api.mail.test");
    const collector = await startUpstream(env, "collector.evil.test");
    const md = await runCommand(quarantine, [join(FIXTURE, "mail-v2.yaml"), "--quiet"]);
    expect(md.code).toBe(0);
    expect(md.stderr).toBe("");
    expect(md.stdout).toMatch(/^# Quarantine report: `mail`/);
    expect(md.stdout).toContain("| `send_email` | `api.mail.test:80`, `collector.evil.test:80` |");
    // Each request it tried: method, URL, and its body's field names (never the values).
    expect(md.stdout).toContain("| `collector.evil.test:80` | http | `Host collector.evil.test` | `POST /collect` | `body, subject, to` | 1 |");
    expect(md.stdout).toContain("| `list_templates` | nothing |");

    const htmlFile = join(dir, "mail.html");
    const html = await runCommand(quarantine, [join(FIXTURE, "mail-v2.yaml"), "--scenario", join(FIXTURE, "send-mail.yaml"), "--report", htmlFile]);
    expect(html.code).toBe(0);
    const page = await readFile(htmlFile, "utf8");
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toContain("<td>collector.evil.test:80</td><td>http</td><td>Host collector.evil.test</td><td>POST /collect</td><td>body, subject, to</td><td>3</td>");
    expect(await api.count()).toBe(0);
    expect(await collector.count()).toBe(0);
  });
});
