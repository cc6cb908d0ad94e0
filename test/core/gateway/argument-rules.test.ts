import { describe, expect, it } from "vitest";
import { checkArgumentRules, isUnder, parseArgumentPath, urlHost, withoutViolatingValues, type ArgumentRule } from "../../../src/core/gateway/argument-rules.js";
import { PolicySchema } from "../../../src/core/policy/policy-schema.js";

const declared = new Set(["api.github.com", "10.0.0.5"]);
const ctx = { declaredHost: (h: string) => declared.has(h) };
const check = (rules: ArgumentRule[], tool: string, args: unknown) => checkArgumentRules(rules, tool, args, ctx).map(({ rule, path, reason }) => ({ rule, path, reason }));

const UNDER_DATA: ArgumentRule = { tool: "read_file", path: "path", allow: { under: ["/data"] } };
const FETCH_DECLARED: ArgumentRule = { tool: "fetch", path: "url", allow: { host: "declared" } };

describe("tools.arguments: allow under a folder", () => {
  it("passes a path inside /data and refuses one outside, naming the rule and path, never the value", () => {
    expect(check([UNDER_DATA], "read_file", { path: "/data/reports/q1.csv" })).toEqual([]);
    expect(check([UNDER_DATA], "read_file", { path: "/data" })).toEqual([]);
    const refused = check([UNDER_DATA], "read_file", { path: "/etc/passwd" });
    expect(refused).toEqual([{ rule: "tools.arguments[0]", path: "$.path", reason: "is not under /data" }]);
    expect(JSON.stringify(refused)).not.toContain("passwd");
  });

  it("resolves .. and . first: traversal out of /data is refused; a sibling with the same prefix is not inside", () => {
    for (const escape of ["/data/../etc/passwd", "/data/./../../etc/shadow", "/database/x", "data/x", "../data/x", "/data\0/x"]) {
      expect(check([UNDER_DATA], "read_file", { path: escape }), escape).toHaveLength(1);
    }
    expect(check([UNDER_DATA], "read_file", { path: "/data/a/../b" })).toEqual([]);
    expect(isUnder("//data//x", "/data/")).toBe(true);
  });

  it("applies only to tools its glob matches; a missing argument leaves it nothing to check", () => {
    expect(check([UNDER_DATA], "write_file", { path: "/etc/passwd" })).toEqual([]);
    expect(check([{ ...UNDER_DATA, tool: "*_file" }], "write_file", { path: "/etc/passwd" })).toHaveLength(1);
    expect(check([UNDER_DATA], "read_file", {})).toEqual([]);
  });

  it("checks every text below the path: an array or object cannot smuggle a value past the rule", () => {
    expect(check([UNDER_DATA], "read_file", { path: ["/data/ok", "/etc/passwd"] })).toEqual([{ rule: "tools.arguments[0]", path: "$.path[1]", reason: "is not under /data" }]);
    expect(check([UNDER_DATA], "read_file", { path: { nested: "/root/.ssh/id_rsa" } })).toEqual([{ rule: "tools.arguments[0]", path: "$.path.nested", reason: "is not under /data" }]);
  });
});

describe("tools.arguments: a URL's host must be declared", () => {
  it("passes a declared host and refuses any other, whatever the spelling", () => {
    expect(check([FETCH_DECLARED], "fetch", { url: "https://api.github.com/repos" })).toEqual([]);
    expect(check([FETCH_DECLARED], "fetch", { url: "https://API.GitHub.com./x" })).toEqual([]);
    expect(check([FETCH_DECLARED], "fetch", { url: "http://10.0.0.5:8080/" })).toEqual([]);
    for (const url of ["https://evil.test/", "https://api.github.com@evil.test/", "https://evil.test/?h=api.github.com", "not a url", "api.github.com/repos", "file:///etc/passwd"]) {
      expect(check([FETCH_DECLARED], "fetch", { url }), url).toHaveLength(1);
    }
    expect(check([FETCH_DECLARED], "fetch", { url: "https://evil.test/" })[0]?.reason).toBe("is a URL whose host the policy's egress does not declare");
  });

  it("or one of the listed host patterns", () => {
    const rule: ArgumentRule = { tool: "*", path: "**.url", allow: { host: ["*.example.test"] } };
    expect(check([rule], "any", { a: { url: "https://docs.example.test/" } })).toEqual([]);
    expect(check([rule], "any", { a: [{ url: "https://example.test.evil/" }] })).toEqual([{ rule: "tools.arguments[0]", path: "$.a[0].url", reason: "is a URL whose host is not *.example.test" }]);
  });
});

describe("tools.arguments: deny, match, paths", () => {
  it("deny refuses a value passing every check it lists; allow needs every check", () => {
    const deny: ArgumentRule = { tool: "run", path: "command", deny: { match: ["*rm -rf*", "*curl *|*sh*"] } };
    expect(check([deny], "run", { command: "ls -la" })).toEqual([]);
    expect(check([deny], "run", { command: "sudo rm -rf /" })).toEqual([{ rule: "tools.arguments[0]", path: "$.command", reason: "matches what the rule denies" }]);
    const both: ArgumentRule = { tool: "*", path: "p", allow: { under: ["/data"], match: ["*.csv"] } };
    expect(check([both], "t", { p: "/data/a.csv" })).toEqual([]);
    expect(check([both], "t", { p: "/data/a.sh" })[0]?.reason).toBe('matches none of "*.csv"');
  });

  it("paths: keys, [n], [*], * and **; numbers are checked as text", () => {
    expect(parseArgumentPath("$.files[*].path")).toEqual({ ok: true, segments: ["files", "*", "path"] });
    expect(parseArgumentPath("a.b[0][1]")).toEqual({ ok: true, segments: ["a", "b", "0", "1"] });
    expect(parseArgumentPath("**.url")).toEqual({ ok: true, segments: ["**", "url"] });
    for (const bad of ["$", "a..b", "a[x]", "a]b"]) expect(parseArgumentPath(bad).ok, bad).toBe(false);
    const rule: ArgumentRule = { tool: "*", path: "files[*].path", allow: { under: ["/data"] } };
    expect(check([rule], "t", { files: [{ path: "/data/a" }, { path: "/tmp/b" }] })).toEqual([{ rule: "tools.arguments[0]", path: "$.files[1].path", reason: "is not under /data" }]);
    expect(check([{ tool: "*", path: "n", allow: { match: ["1?"] } }], "t", { n: 12 })).toEqual([]);
    expect(check([{ tool: "*", path: "n", allow: { match: ["1?"] } }], "t", { n: 7 })).toHaveLength(1);
  });

  it("arguments too large to walk are a violation (not trusted unread)", () => {
    let deep: unknown = "/etc/passwd";
    for (let i = 0; i < 100; i++) deep = { x: deep };
    expect(check([{ tool: "*", path: "**.y", allow: { under: ["/data"] } }], "t", deep)).toEqual([{ rule: "tools.arguments", path: "$", reason: expect.stringMatching(/^is too large to check/) }]);
  });

  it("the violating values are cut out of what the audit keeps", () => {
    const args = { path: "/etc/passwd", mode: "r", list: ["/data/a", "/etc/shadow"] };
    const violations = checkArgumentRules([UNDER_DATA, { tool: "*", path: "list", allow: { under: ["/data"] } }], "read_file", args, ctx);
    expect(withoutViolatingValues(args, violations)).toEqual({ path: "[refused: tools.arguments[0]]", mode: "r", list: ["/data/a", "[refused: tools.arguments[1]]"] });
  });

  it("urlHost: only URLs with a scheme and a host", () => {
    expect(urlHost("https://[::1]:8080/")).toBe("::1");
    expect(urlHost("mailto:x@y.test")).toBeUndefined();
    expect(urlHost("https://Example.TEST./")).toBe("example.test");
  });
});

describe("tools.arguments in the policy schema", () => {
  const parse = (args: unknown) => PolicySchema.safeParse({ version: 1, name: "fs", server: { image: { ref: "x" } }, tools: { arguments: args } });
  it("accepts the issue's two examples", () => {
    expect(parse([{ tool: "read_file", path: "path", allow: { under: ["/data"] } }, { tool: "fetch", path: "url", allow: { host: "declared" } }]).success).toBe(true);
  });
  it("refuses a rule without allow or deny, an empty check, a bad path, a relative folder", () => {
    const messages = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
    expect(messages(parse([{ path: "p" }]))).toEqual(['tools.arguments.0: an arguments rule needs "allow" or "deny"']);
    expect(messages(parse([{ path: "p", allow: {} }]))).toEqual(['tools.arguments.0.allow: a check needs "match", "under" or "host"']);
    expect(messages(parse([{ path: "a..b", deny: { match: ["x"] } }]))[0]).toMatch(/tools\.arguments\.0\.path: "a\.\.b": .* has an empty segment/);
    expect(messages(parse([{ path: "p", allow: { under: ["data"] } }]))).toEqual(['tools.arguments.0.allow.under.0: "data" is not an absolute path']);
  });
});
