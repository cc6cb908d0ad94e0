import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { formatBaselineDiff } from "../../src/baseline/index.js";
import { decide } from "../../src/core/decision.js";
import { asFrozen, diffBaselines, freezeBaseline, recordBaseline, toBaselineView, type Baseline } from "../../src/core/baseline/index.js";
import { testPolicy } from "../support/sidecar-context.js";
import { call, connection, mailRun, T0 } from "./support/observations.js";

const learn = (observations = mailRun(), rateTolerance = 2): Baseline => recordBaseline({ server: "postmark", rateTolerance }, observations);
const AT = new Date("2025-03-02T09:00:00.000Z");

describe("freezing", () => {
  it("turns learning into frozen with a frozenAt, and only a frozen baseline passes asFrozen", () => {
    const learning = learn();
    expect(asFrozen(learning)).toBeUndefined();
    const frozen = freezeBaseline(learning, AT);
    expect(frozen).toEqual({ ...learning, status: "frozen", frozenAt: "2025-03-02T09:00:00.000Z" });
    expect(asFrozen(frozen)).toBe(frozen);
    expect(Object.keys(frozen).slice(0, 5)).toEqual(["version", "server", "status", "frozenAt", "rateTolerance"]);
  });

  it("leaves a frozen baseline as it was", () => {
    const frozen = freezeBaseline(learn(), AT);
    expect(freezeBaseline(frozen, new Date(0))).toBe(frozen);
  });
});

describe("toBaselineView and the decision", () => {
  const frozen = freezeBaseline(learn(), AT);
  const view = toBaselineView(frozen);
  // A policy that allows all of *.test, as in the ENFORCING run.
  const ctx = { policy: testPolicy({ name: "postmark", egress: { allow: [{ host: "*.test", ports: [443] }] } }), mode: "enforcing" as const, baseline: view };

  it("carries destinations, names, DNS names, per-minute maxima and the tolerance", () => {
    expect(view).toEqual({
      destinations: new Set(["api.mail.test:443"]),
      names: new Set(["api.mail.test"]),
      dnsNames: new Set(["api.mail.test"]),
      maxConnectionsPerMinute: new Map([["api.mail.test:443", 3]]),
      rateTolerance: 2,
      requests: { routes: new Map() },
    });
  });

  it("lets v1's traffic through and blocks v2's collector under the declared wildcard", () => {
    expect(decide(ctx, { stage: "dns", protocol: "dns", name: "api.mail.test", recordType: "A" }).verdict).toBe("allow");
    expect(decide(ctx, { stage: "connect", protocol: "tls", name: "api.mail.test", port: 443, connectionsPerMinute: 6 }).verdict).toBe("allow");
    expect(decide(ctx, { stage: "connect", protocol: "tls", name: "collector.evil.test", port: 443 })).toEqual({ verdict: "block", reasons: ["drift-new-destination"], rule: "*.test" });
    expect(decide(ctx, { stage: "dns", protocol: "dns", name: "collector.evil.test", recordType: "A" })).toEqual({ verdict: "block", reasons: ["drift-new-dns-name"], rule: "*.test" });
    expect(decide(ctx, { stage: "connect", protocol: "tls", name: "api.mail.test", port: 443, connectionsPerMinute: 7 })).toEqual({ verdict: "block", reasons: ["drift-rate"], rule: "*.test" });
  });

  it("treats a name the server connected to as a known DNS name (learned through the explicit proxy)", () => {
    const explicitOnly = learn(mailRun().filter((o) => o.kind !== "event" || o.event.type !== "dns"));
    const v = toBaselineView(freezeBaseline(explicitOnly, AT));
    expect(v.dnsNames).toEqual(new Set(["api.mail.test"]));
  });
});

describe("diffing baselines", () => {
  it("finds no behavioural difference between a baseline and its frozen self", () => {
    const a = learn();
    const diff = diffBaselines(a, freezeBaseline(a, AT));
    expect(diff.same).toBe(true);
    expect(diff.settings).toEqual([{ field: "status", before: "learning", after: "frozen" }]);
  });

  it("ignores counts and timestamps: a longer recording of the same behaviour is the same", () => {
    const slow = learn(mailRun({ calls: 2 }).map((o) => (o.kind === "tool-call" ? { ...o, ts: (Date.parse(String(o.ts)) + 1000) } : o)));
    expect(diffBaselines(learn(mailRun({ calls: 2 })), slow).same).toBe(true);
  });

  it("reports added, removed and changed entries", () => {
    const a = learn();
    const b = learn([...mailRun({ copies: ["collector.evil.test"], connectionsPerCall: 2 }).filter((o) => o.kind !== "tool-call" || o.tool !== "list_templates"), call("export_all", T0), ...connection("api.mail.test", 8443, T0 + 1, [])], 3);
    const diff = diffBaselines(a, b);
    expect(diff.same).toBe(false);
    expect(diff.settings).toEqual([{ field: "rateTolerance", before: 2, after: 3 }]);
    expect(diff.destinations.added.map((d) => `${d.name}:${d.port}`)).toEqual(["api.mail.test:8443", "collector.evil.test:443"]);
    expect(diff.destinations.changed).toEqual([{ key: "api.mail.test:443", changes: [{ field: "perMinute.max", before: 3, after: 6 }] }]);
    expect(diff.dns.added).toEqual([{ name: "collector.evil.test", type: "A" }]);
    expect(diff.tools.added.map((t) => t.name)).toEqual(["export_all"]);
    expect(diff.tools.removed.map((t) => t.name)).toEqual(["list_templates"]);
    expect(diff.tools.changed).toEqual([
      { key: "send_email", changes: [{ field: "destinations", before: ["api.mail.test:443"], after: ["api.mail.test:443", "collector.evil.test:443"] }] },
    ]);
    expect(formatBaselineDiff(diff, { a: "a.json", b: "b.json" })).toBe(
      [
        "--- a.json (postmark, learning)",
        "+++ b.json (postmark, learning)",
        "rateTolerance: 2 -> 3",
        "destinations:",
        "  + api.mail.test:8443 (tls; outside any tool call; at most 1 a minute)",
        "  + collector.evil.test:443 (tls; from send_email; at most 3 a minute)",
        "  ~ api.mail.test:443: perMinute.max 3 -> 6",
        "dns:",
        "  + collector.evil.test A",
        "tools:",
        "  + export_all (1 call; makes no connections)",
        "  - list_templates (1 call; makes no connections)",
        "  ~ send_email: destinations [api.mail.test:443] -> [api.mail.test:443, collector.evil.test:443]",
        "",
      ].join("\n"),
    );
  });

  it("compares the committed fixtures", async () => {
    const load = async (f: string): Promise<Baseline> => JSON.parse(await readFile(`test/fixtures/baselines/${f}`, "utf8")) as Baseline;
    const diff = diffBaselines(await load("postmark-v1-frozen.json"), await load("postmark-v2.json"));
    expect(diff.destinations.added.map((d) => d.name)).toEqual(["collector.evil.test"]);
  });
});

describe("toBaselineView with a destination whose rate is unknown", () => {
  it("leaves a maximum of 0 out, so it cannot make every connection drift", () => {
    const b = learn([...mailRun()]);
    const edited = { ...b, destinations: b.destinations.map((d) => ({ ...d, perMinute: { max: 0, p95: 0 } })) };
    const view = toBaselineView(freezeBaseline(edited, AT));
    expect(view.destinations.has("api.mail.test:443")).toBe(true);
    expect(view.maxConnectionsPerMinute?.size).toBe(0);
  });
});
