import { describe, expect, it } from "vitest";
import { decide, type Attempt, type DecisionContext } from "../../src/core/decision.js";
import { compileRoute, matchRoute } from "../../src/core/policy/compiled-policy.js";
import { PolicySchema, type PolicyInput } from "../../src/core/policy/policy-schema.js";
import { testPolicy } from "../support/sidecar-context.js";

/** `inspect` and `http` routes: the schema, the glob matcher and the decision. */
const EGRESS: NonNullable<PolicyInput["egress"]> = {
  allow: [
    { host: "api.postmark.test", ports: [443], inspect: true, http: [{ method: "POST", path: "/email" }, { method: "POST", path: "/email/batch" }] },
    { host: "files.example.test", ports: [80], http: [{ method: "GET", path: "/pub/**" }, { method: "*", path: "/status" }] },
    { host: "open.example.test", ports: [443] },
  ],
};

const ctx = (mode: "enforcing" | "observing" = "enforcing"): DecisionContext => ({ policy: testPolicy({ name: "routes", egress: EGRESS }), mode });
const request = (name: string, method: string, target: string, port = 443): Attempt => ({ stage: "connect", protocol: "http", name, port, method, target });

describe("http route globs", () => {
  const routes = [compileRoute({ method: "GET", path: "/a/*/c" }), compileRoute({ method: "POST", path: "/up/**" }), compileRoute({ method: "*", path: "/x.json" })];
  it.each([
    ["GET", "/a/b/c", "GET /a/*/c"],
    ["GET", "/a/b/c?q=1&r=/etc", "GET /a/*/c"],
    ["POST", "/up/1/2/3", "POST /up/**"],
    ["DELETE", "/x.json", "* /x.json"],
  ])("%s %s matches %s", (method, target, text) => {
    expect(matchRoute(routes, method, target)?.text).toBe(text);
  });

  it.each([
    ["POST", "/a/b/c"], // method
    ["GET", "/a/b/d/c"], // * is one segment
    ["GET", "/xyjson"], // the dot is literal
    ["POST", "/up"], // ** needs the slash before it
    ["GET", "/a/../a/b/c"], // dot segments
    ["GET", "/a/./c"],
    ["POST", "/up/%2e%2e/admin"], // encoded dots and slashes
    ["POST", "/up/a%2Fb"],
    ["POST", "/up/a\\b"],
    ["GET", "http://evil.test/a/b/c"], // not a path
  ])("%s %s matches nothing", (method, target) => {
    expect(matchRoute(routes, method, target)).toBeUndefined();
  });
});

describe("decide with http routes", () => {
  it("allows a listed request and says the rule inspects", () => {
    expect(decide(ctx(), request("api.postmark.test", "POST", "/email?x=1"))).toEqual({ verdict: "allow", reasons: ["declared-host"], rule: "api.postmark.test", inspect: true });
  });

  it("refuses a request the rule does not list (would-block when observing)", () => {
    expect(decide(ctx(), request("api.postmark.test", "GET", "/email"))).toMatchObject({ verdict: "block", reasons: ["undeclared-route"] });
    expect(decide(ctx("observing"), request("api.postmark.test", "POST", "/admin"))).toMatchObject({ verdict: "would-block", reasons: ["undeclared-route"] });
  });

  it("holds routes on plain HTTP without inspect", () => {
    expect(decide(ctx(), request("files.example.test", "GET", "/pub/a/b.txt", 80)).verdict).toBe("allow");
    expect(decide(ctx(), request("files.example.test", "PUT", "/status", 80)).verdict).toBe("allow");
    expect(decide(ctx(), request("files.example.test", "GET", "/private", 80)).reasons).toEqual(["undeclared-route"]);
  });

  it("refuses a connection whose requests it cannot see on a rule that lists requests, but not on an inspected one", () => {
    expect(decide(ctx(), { stage: "connect", protocol: "tls", name: "files.example.test", port: 80, opaque: true }).reasons).toEqual(["requests-not-visible"]);
    expect(decide(ctx(), { stage: "connect", protocol: "tls", name: "api.postmark.test", port: 443, opaque: true }).verdict).toBe("allow");
    expect(decide(ctx(), { stage: "connect", protocol: "tls", name: "open.example.test", port: 443, opaque: true }).verdict).toBe("allow");
  });

  it("leaves inspect off the verdict of a rule that does not inspect", () => {
    expect(decide(ctx(), request("open.example.test", "DELETE", "/anything")).inspect).toBeUndefined();
  });
});

describe("the schema for inspect and http", () => {
  const parse = (entry: Record<string, unknown>) => PolicySchema.safeParse({ version: 1, name: "x", server: { image: { ref: "x" } }, egress: { allow: [entry] } });
  const messages = (entry: Record<string, unknown>): string[] => {
    const r = parse(entry);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("rejects http routes on a TLS port without inspect, naming the port", () => {
    expect(messages({ host: "a.test", ports: [443], http: [{ method: "POST", path: "/email" }] })).toEqual([
      'egress.allow.0.http: http rules can never see requests on TLS port 443 unless the rule says "inspect: true"',
    ]);
    expect(messages({ host: "a.test", ports: [443], inspect: true, http: [{ method: "POST", path: "/email" }] })).toEqual([]);
    expect(messages({ host: "a.test", ports: [80], http: [{ method: "POST", path: "/email" }] })).toEqual([]);
  });

  it("rejects inspect on a CIDR rule, bad methods and paths with a query", () => {
    expect(messages({ cidr: "10.0.0.0/8", inspect: true })).toEqual(['egress.allow.0.inspect: "inspect" and "http" need a "host" rule: TLS is terminated for a name']);
    expect(messages({ host: "a.test", ports: [80], http: [{ method: "post", path: "/x" }] })[0]).toMatch(/"post" is not an HTTP method/);
    expect(messages({ host: "a.test", ports: [80], http: [{ method: "GET", path: "/x?y=1" }] })[0]).toMatch(/leave out the query/);
    expect(messages({ host: "a.test", ports: [80], http: [{ method: "GET", path: "x" }] })[0]).toMatch(/is not a path glob/);
  });
});
