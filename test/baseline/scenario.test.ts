import { describe, expect, it } from "vitest";
import { loadScenarioFile, parseScenarioText, unknownToolIssues } from "../../src/baseline/index.js";
import { planCalls } from "../../src/core/baseline/index.js";
import { formatIssues } from "../../src/policy/index.js";

const DIR = "test/fixtures/scenarios";

function textIssues(text: string): string {
  const r = parseScenarioText(text, "s.yaml");
  return r.ok ? "" : formatIssues(r.issues);
}

async function issues(file: string): Promise<string> {
  const r = await loadScenarioFile(`${DIR}/${file}`);
  return r.ok ? "" : formatIssues(r.issues);
}

describe("scenario files", () => {
  it("loads a valid scenario with defaults filled in", async () => {
    const r = await loadScenarioFile(`${DIR}/send-email.yaml`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.scenario).toEqual({
      description: "The postmark fixture's normal day",
      calls: [
        { tool: "send_email", arguments: { to: "a@example.org", subject: "hi" }, repeat: 3 },
        { tool: "list_templates", arguments: {}, repeat: 1 },
      ],
    });
    expect(r.toolPositions).toEqual([
      { line: 4, col: 11 },
      { line: 7, col: 11 },
    ]);
    expect(planCalls(r.scenario).map((c) => `${c.tool}#${c.index}.${c.repetition}`)).toEqual(["send_email#0.0", "send_email#0.1", "send_email#0.2", "list_templates#1.0"]);
  });

  it("gives a typo its file:line:col: path and a did-you-mean", async () => {
    expect(await issues("typo.yaml")).toBe(`${DIR}/typo.yaml:4:5: calls[0].repat: unknown key "repat"; did you mean "repeat"?\n`);
  });

  it("reports every problem, in file order", async () => {
    expect(await issues("several-problems.yaml")).toBe(
      [
        `${DIR}/several-problems.yaml:3:16: calls[0].arguments: arguments must be a mapping of argument names to values, not ["to","subject"]`,
        `${DIR}/several-problems.yaml:4:13: calls[0].repeat: 0 is not a valid repeat count (1-1000)`,
        `${DIR}/several-problems.yaml:5:5: calls[1].tool: missing required key "tool"`,
        `${DIR}/several-problems.yaml:6:11: calls[2].tool: tool must name a tool`,
        `${DIR}/several-problems.yaml:7:13: calls[2].repeat: 2.5 is not a whole number of repeats`,
        `${DIR}/several-problems.yaml:8:1: callz: unknown key "callz"; did you mean "calls"?`,
        "",
      ].join("\n"),
    );
  });

  it("reports YAML trouble, empty files and missing files the same way", async () => {
    expect(await issues("duplicate-key.yaml")).toBe(`${DIR}/duplicate-key.yaml:3:5: calls[0].tool: duplicate key "tool"; keys in a mapping must be unique\n`);
    expect(textIssues("")).toBe("s.yaml:1:1: the file holds no scenario; it needs a list of calls, as in: calls: [{ tool: my_tool }]\n");
    expect(textIssues("- a\n")).toBe("s.yaml:1:1: a scenario must be a mapping (key: value lines) at the top level\n");
    expect(textIssues("calls: []\n")).toBe("s.yaml:1:8: calls: a scenario needs at least one call\n");
    expect(textIssues("calls:\n  - tool: a\n---\ncalls: []\n")).toContain("a scenario file holds one YAML document");
    expect(await issues("missing.yaml")).toBe(`${DIR}/missing.yaml: no such file\n`);
    expect(await issues("")).toBe(`${DIR}/: is a folder, not a scenario file\n`);
  });

  it("names calls to tools the server does not offer, with a did-you-mean", () => {
    const r = parseScenarioText("calls:\n  - tool: send_emial\n  - tool: list_templates\n  - tool: frobnicate\n", "s.yaml");
    if (!r.ok) throw new Error("expected a valid scenario");
    expect(formatIssues(unknownToolIssues(r, ["send_email", "list_templates"]))).toBe(
      [
        's.yaml:2:11: calls[0].tool: "send_emial" is not a tool of this server; did you mean "send_email"?',
        's.yaml:4:11: calls[2].tool: "frobnicate" is not a tool of this server; it offers list_templates, send_email',
        "",
      ].join("\n"),
    );
  });
});
