import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Approval } from "../../src/core/gateway/approvals.js";
import { diffApproval, lineDiff } from "../../src/gateway/approval-diff.js";
import { hangar } from "../cli/capture-io.js";

const root = mkdtempSync(join(tmpdir(), "hangar-approval-rules-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const everything = readFileSync("policies/everything.yaml", "utf8");

function project(name: string, extra = ""): { config: string; policy: string } {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "policy.yaml"), everything);
  writeFileSync(join(dir, "hangar.yaml"), `servers: [policy.yaml]\n${extra}`);
  return { config: join(dir, "hangar.yaml"), policy: join(dir, "policy.yaml") };
}

const idOf = (stdout: string): string => /^(apr-[0-9a-f]+):/.exec(stdout)?.[1] ?? "";

describe("approvals.requireDistinctGranter", () => {
  it("refuses a grant by the identity that requested it, and accepts another's", async () => {
    const { config, policy } = project("distinct", "approvals:\n  requireDistinctGranter: true\n");
    const request = await hangar(["approve", "request", policy, "--by", "alice", "--config", config]);
    expect(request.code, request.stderr).toBe(0);
    const id = idOf(request.stdout);
    const self = await hangar(["approve", "grant", id, "--by", "alice", "--config", config]);
    expect(self.code).toBe(2);
    expect(self.stderr).toContain("requested by alice, who may not grant it too (approvals.requireDistinctGranter is true)");
    const listed = JSON.parse((await hangar(["approve", "list", "--json", "--config", config])).stdout) as { approvals: { id: string; status: string }[] };
    expect(listed.approvals).toMatchObject([{ id, status: "pending" }]);
    const other = await hangar(["approve", "grant", id, "--by", "bob", "--config", config, "--json"]);
    expect(other.code, other.stderr).toBe(0);
    expect(JSON.parse(other.stdout)).toMatchObject({ id, status: "granted", by: "bob", toolsOnly: false, withheld: [] });
  });

  it("is off by default: the requester may grant their own request", async () => {
    const { config, policy } = project("default");
    const request = JSON.parse((await hangar(["approve", "request", policy, "--by", "alice", "--config", config, "--json"])).stdout) as { id: string; status: string; pins: Record<string, unknown> };
    expect(request).toMatchObject({ status: "pending", requestedBy: "alice" });
    expect(request.pins).not.toHaveProperty("policyText");
    expect((await hangar(["approve", "grant", request.id, "--by", "alice", "--config", config])).code).toBe(0);
  });

  it("rejects a non-boolean setting with its position", async () => {
    const { config } = project("bad", "approvals:\n  requireDistinctGranter: yes please\n");
    const run = await hangar(["config", "check", "--config", config]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/hangar\.yaml:3:27: approvals\.requireDistinctGranter: "yes please" is not true or false/);
  });
});

describe("approve list --diff", () => {
  it("shows what a pending approval changes from the last grant: source, command and policy lines", async () => {
    const { config, policy } = project("diff");
    const first = idOf((await hangar(["approve", "request", policy, "--by", "alice", "--config", config])).stdout);
    expect((await hangar(["approve", "grant", first, "--by", "bob", "--config", config])).code).toBe(0);
    writeFileSync(policy, everything.replace(/^description: .*$/m, "description: now with a new description"));
    const second = idOf((await hangar(["approve", "request", policy, "--by", "alice", "--config", config])).stdout);

    const run = await hangar(["approve", "list", "--diff", "--config", config]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`${second} everything: changes since the grant of ${first}`);
    expect(run.stdout).toMatch(/^ {4}- description: MCP reference server/m);
    expect(run.stdout).toMatch(/^ {4}\+ description: now with a new description$/m);
    expect(run.stdout).not.toContain(`${first} everything: changes`);

    const json = JSON.parse((await hangar(["approve", "list", "--diff", "--json", "--config", config])).stdout) as { approvals: { id: string; diff?: { since?: string; policy?: string[]; source?: unknown } }[] };
    const diff = json.approvals.find((a) => a.id === second)?.diff;
    expect(diff?.since).toBe(first);
    expect(diff?.source).toBeUndefined();
    expect(diff?.policy).toContain("+ description: now with a new description");
  });

  it("diffs the source, the command and the tools of the pinned manifests", () => {
    const approval = (id: string, seq: number, status: Approval["status"], version: string, args: string[], tools: Record<string, string>): Approval => ({
      id,
      server: "s",
      status,
      seq,
      requestedBy: "a",
      requestedAt: "t",
      pins: { source: { kind: "npm", package: "p", version }, args, policyDigest: "d", manifest: { digest: id, tools } },
    });
    const old = approval("apr-1", 2, "granted", "1.0.0", ["serve"], { read: "r1", write: "w1", gone: "g1" });
    const next = approval("apr-2", 3, "pending", "1.1.0", ["serve", "--fast"], { read: "r1", write: "w2", fresh: "f1" });
    expect(diffApproval([old, next], next)).toEqual({
      approval: "apr-2",
      server: "s",
      since: "apr-1",
      source: { from: "npm p@1.0.0 (no integrity)", to: "npm p@1.1.0 (no integrity)" },
      command: { from: "serve", to: "serve --fast" },
      tools: { added: ["fresh"], removed: ["gone"], changed: ["write"] },
    });
  });

  it("lineDiff keeps common lines and marks the rest", () => {
    expect(lineDiff("a\nb\nc\n", "a\nx\nc\n")).toEqual(["  a", "- b", "+ x", "  c"]);
  });
});
