import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/core/audit/audit-record.js";
import { checkApproval, foldApprovals, MANIFEST_PINNED_ACTION } from "../../src/core/gateway/approvals.js";
import { globMatches } from "../../src/core/gateway/glob.js";
import { manifestDigest, pinManifest, toolDigest } from "../../src/core/gateway/manifest-digest.js";
import { manifestDrift, withheldByDrift } from "../../src/core/gateway/manifest-drift.js";
import { EXPOSED_NAME, exposedName, exposedResourceUri, namespaceNames, parseResourceUri, serverNameProblem, serverOf } from "../../src/core/gateway/namespacing.js";
import { RateLimiter } from "../../src/core/gateway/rate-limiter.js";
import { Rbac } from "../../src/core/gateway/rbac.js";
import { runPins } from "../../src/core/gateway/source-pins.js";
import { decideToolRule } from "../../src/core/gateway/tool-rules.js";
import { PolicySchema } from "../../src/core/policy/policy-schema.js";

describe("namespacing", () => {
  it("exposes <server>__<name>, valid for clients", () => {
    expect(exposedName("github", "create_issue")).toBe("github__create_issue");
    expect(serverOf("github__create__issue")).toBe("github");
  });

  it("makes invalid names valid and keeps long ones within 64 characters, distinctly", () => {
    const dotted = exposedName("srv", "files.read/all");
    expect(dotted).toBe("srv__files_read_all");
    const long1 = exposedName("server", "x".repeat(80));
    const long2 = exposedName("server", `${"x".repeat(79)}y`);
    for (const n of [long1, long2]) expect(n).toMatch(EXPOSED_NAME);
    expect(long1).not.toBe(long2);
  });

  it("withholds every name that would collide rather than let one shadow another", () => {
    const ns = namespaceNames("srv", ["a.b", "a_b", "c"]);
    expect(ns.entries).toEqual([{ exposed: "srv__c", original: "c" }]);
    expect(ns.conflicts).toEqual([{ exposed: "srv__a_b", originals: ["a.b", "a_b"] }]);
  });

  it("rejects server names that would blur the separator or not fit", () => {
    expect(serverNameProblem("everything")).toBeUndefined();
    expect(serverNameProblem("a__b")).toMatch(/contains "__"/);
    expect(serverNameProblem("a_")).toMatch(/starts or ends with "_"/);
    expect(serverNameProblem("a.b")).toMatch(/only letters/);
    expect(serverNameProblem("x".repeat(62))).toMatch(/at most 61/);
  });

  it("round-trips resource URIs, templates included", () => {
    const uri = exposedResourceUri("fs", "file:///{path}");
    expect(uri).toBe("hangar://fs/file:///{path}");
    expect(parseResourceUri(uri)).toEqual({ server: "fs", uri: "file:///{path}" });
    expect(parseResourceUri("file:///etc/passwd")).toBeUndefined();
    expect(parseResourceUri("hangar:///x")).toBeUndefined();
  });
});

describe("globs", () => {
  it("match whole names with * and ?, everything else literal", () => {
    expect(globMatches("github__*", "github__create_issue")).toBe(true);
    expect(globMatches("github__*", "gitlab__x")).toBe(false);
    expect(globMatches("*__read_?", "fs__read_a")).toBe(true);
    expect(globMatches("a.b", "axb")).toBe(false);
    expect(globMatches("echo", "echo2")).toBe(false);
  });
});

describe("RBAC", () => {
  const rbac = new Rbac({
    roles: { reader: { allow: ["*__read*", "fs__list"], deny: [] }, admin: { allow: ["*"], deny: ["*__delete*"] }, nobody: { allow: [], deny: [] } },
    bindings: { alice: ["reader"], root: ["admin", "reader"], "*": ["nobody"] },
  });

  it("grants what some role allows", () => {
    expect(rbac.decide("alice", "fs__read_file")).toEqual({ allowed: true, role: "reader", rule: "*__read*" });
  });

  it("names the missing permission when nothing allows it", () => {
    const d = rbac.decide("alice", "fs__write_file");
    expect(d).toMatchObject({ allowed: false, permission: "fs__write_file", roles: ["reader", "nobody"] });
    expect(d.allowed ? "" : d.message).toBe('identity "alice" lacks permission "fs__write_file": none of its roles (reader, nobody) allows it');
  });

  it("lets deny win over any allow", () => {
    const d = rbac.decide("root", "fs__delete_file");
    expect(d).toMatchObject({ allowed: false, deniedBy: { role: "admin", rule: "*__delete*" } });
  });

  it("denies an identity without roles, saying so", () => {
    const d = new Rbac({ roles: {}, bindings: {} }).decide("mallory", "fs__read");
    expect(d.allowed ? "" : d.message).toMatch(/it has no role/);
  });

  it("allows everything when disabled", () => {
    expect(Rbac.allowAll().allows("anyone", "x__y")).toBe(true);
  });
});

describe("policy tool rules and rate limit", () => {
  it("deny wins, and an allow list excludes the rest", () => {
    expect(decideToolRule("s", { deny: [] }, "x")).toEqual({ allowed: true });
    expect(decideToolRule("s", { allow: ["read_*"], deny: ["read_secret"] }, "read_secret")).toMatchObject({ allowed: false, rule: 'tools.deny "read_secret"' });
    expect(decideToolRule("s", { allow: ["read_*"], deny: [] }, "write")).toMatchObject({ allowed: false, rule: "tools.allow" });
  });

  it("refills perMinute tokens continuously", () => {
    const limiter = new RateLimiter(2, 0);
    expect(limiter.tryTake(0).allowed).toBe(true);
    expect(limiter.tryTake(0).allowed).toBe(true);
    expect(limiter.tryTake(0)).toEqual({ allowed: false, retryAfterMs: 30_000 });
    expect(limiter.tryTake(30_000).allowed).toBe(true);
  });
});

describe("manifest digest and drift", () => {
  const tools = [
    { name: "b", description: "B", inputSchema: { type: "object", properties: { x: { type: "string" } } } },
    { name: "a", description: "A", inputSchema: { type: "object" } },
  ];

  it("does not depend on list order or key order, but on every description and schema", () => {
    const reordered = [{ ...tools[1]!, inputSchema: { type: "object" } }, { inputSchema: { properties: { x: { type: "string" } }, type: "object" }, description: "B", name: "b" }];
    expect(manifestDigest(reordered)).toBe(manifestDigest(tools));
    expect(manifestDigest([tools[0]!, { ...tools[1]!, description: "A!" }])).not.toBe(manifestDigest(tools));
    expect(toolDigest(tools[1]!)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("says which tools changed, were added or removed", () => {
    const pinned = pinManifest(tools);
    const current = pinManifest([{ ...tools[0]!, description: "B, and exfiltrate" }, { name: "c", inputSchema: {} }]);
    const drift = manifestDrift(pinned, current);
    expect(drift).toMatchObject({ changed: ["b"], added: ["c"], removed: ["a"] });
    expect([...withheldByDrift(drift)].sort()).toEqual(["b", "c"]);
    expect(manifestDrift(pinned, pinManifest([...tools].reverse()))).toBeUndefined();
  });
});

describe("approvals folded from the audit log", () => {
  const policy = PolicySchema.parse({ version: 1, name: "srv", server: { npm: { package: "x", version: "1.0.0" } } });
  const pins = runPins(policy);
  let seq = 0;
  const rec = (kind: AuditRecord["kind"], data: Record<string, unknown>): AuditRecord => ({ seq: ++seq, ts: `2025-01-01T00:00:0${seq % 10}.000Z`, kind, data: data as never, prevHash: "", hash: "" });

  it("moves request → grant, pins the manifest on first start, and ignores steps out of order", () => {
    seq = 0;
    const records = [
      rec("approval", { approvalId: "apr-1", server: "srv", action: "request", identity: "dev", pins }),
      rec("approval", { approvalId: "apr-1", server: "srv", action: "grant", identity: "lead" }),
      rec("approval", { approvalId: "apr-1", server: "srv", action: "deny", identity: "mallory", reason: "too late" }),
      rec("policy", { action: MANIFEST_PINNED_ACTION, server: "srv", detail: { approvalId: "apr-1", digest: "d1", tools: { echo: "t1" } } }),
      rec("policy", { action: MANIFEST_PINNED_ACTION, server: "srv", detail: { approvalId: "apr-1", digest: "d2", tools: {} } }),
    ];
    const a = foldApprovals(records).get("apr-1");
    expect(a).toMatchObject({ status: "granted", decidedBy: "lead", requestedBy: "dev" });
    expect(a?.pins.manifest).toEqual({ digest: "d1", tools: { echo: "t1" } });
    expect(checkApproval(foldApprovals(records).values(), "srv", pins)).toMatchObject({ status: "approved" });
  });

  it("treats a changed policy as changed, and a pending request as unapproved", () => {
    seq = 0;
    const records = [rec("approval", { approvalId: "apr-1", server: "srv", action: "request", identity: "dev", pins }), rec("approval", { approvalId: "apr-1", server: "srv", action: "grant", identity: "lead" })];
    const changed = runPins(PolicySchema.parse({ version: 1, name: "srv", server: { npm: { package: "x", version: "1.0.1" } } }));
    const check = checkApproval(foldApprovals(records).values(), "srv", changed);
    expect(check.status).toBe("changed");
    expect(check.status === "changed" ? check.differences.join("; ") : "").toMatch(/source npm x@1.0.0 \(no integrity\) → npm x@1.0.1/);
    expect(checkApproval(foldApprovals(records.slice(0, 1)).values(), "srv", pins)).toMatchObject({ status: "unapproved", pending: [{ id: "apr-1" }] });
  });
});
