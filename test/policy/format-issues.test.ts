import { describe, expect, it } from "vitest";
import { formatIssue, formatIssues, formatPath, issuesToJson, type PolicyIssue } from "../../src/policy/index.js";

const issue = (over: Partial<PolicyIssue> = {}): PolicyIssue => ({
  file: "policies/x.yaml",
  line: 12,
  col: 9,
  path: ["egress", "allow", 2, "cidr"],
  message: '"10.0.0.0/33" is not a valid CIDR',
  severity: "error",
  code: "custom",
  ...over,
});

describe("formatPath", () => {
  it("renders keys with dots and indexes with brackets", () => {
    expect(formatPath(["egress", "allow", 2, "cidr"])).toBe("egress.allow[2].cidr");
    expect(formatPath([0, "a"])).toBe("[0].a");
    expect(formatPath([])).toBe("");
  });

  it("quotes keys that are not plain words", () => {
    expect(formatPath(["server", "env", "bad-name"])).toBe('server.env["bad-name"]');
    expect(formatPath(["a", "x.y"])).toBe('a["x.y"]');
  });
});

describe("formatIssue", () => {
  it("is file:line:col: path: message", () => {
    expect(formatIssue(issue())).toBe('policies/x.yaml:12:9: egress.allow[2].cidr: "10.0.0.0/33" is not a valid CIDR');
  });

  it("marks warnings", () => {
    expect(formatIssue(issue({ severity: "warning", path: ["egress", "capture"], message: "m" }))).toBe("policies/x.yaml:12:9: warning: egress.capture: m");
  });

  it("leaves out an empty path, and the position of a whole-file problem", () => {
    expect(formatIssue(issue({ path: [], message: "m" }))).toBe("policies/x.yaml:12:9: m");
    expect(formatIssue(issue({ line: 0, col: 0, path: [], message: "no such file" }))).toBe("policies/x.yaml: no such file");
  });

  it("formatIssues ends every line", () => {
    expect(formatIssues([issue({ message: "a" }), issue({ message: "b" })])).toBe(
      "policies/x.yaml:12:9: egress.allow[2].cidr: a\npolicies/x.yaml:12:9: egress.allow[2].cidr: b\n",
    );
    expect(formatIssues([])).toBe("");
  });
});

describe("issuesToJson", () => {
  it("counts errors and warnings and keeps every field", () => {
    const json = issuesToJson("policies/x.yaml", [issue(), issue({ severity: "warning" })]);
    expect(json).toMatchObject({ file: "policies/x.yaml", ok: false, errors: 1, warnings: 1 });
    expect(json.issues[0]).toEqual({ ...issue(), pathText: "egress.allow[2].cidr" });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it("is ok with warnings only, unless strict", () => {
    expect(issuesToJson("f", [issue({ severity: "warning" })]).ok).toBe(true);
    expect(issuesToJson("f", [issue({ severity: "warning" })], { strict: true }).ok).toBe(false);
    expect(issuesToJson("f", [], { strict: true }).ok).toBe(true);
  });
});
