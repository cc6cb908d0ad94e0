import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parseBaselineText, loadBaselineFile } from "../../src/baseline/index.js";
import { recordBaseline, serialiseBaseline, type Baseline } from "../../src/core/baseline/index.js";
import { formatIssues } from "../../src/policy/index.js";
import { mailRun } from "./support/observations.js";

const FIXTURES = "test/fixtures/baselines";
const v1 = (): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, mailRun());

/** Deterministic shuffle, so the test shows order independence without flakiness. */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("baseline serialisation", () => {
  // After a deliberate format change: npx tsx test/baseline/support/write-fixtures.ts
  it("writes the committed golden file byte for byte", async () => {
    expect(serialiseBaseline(v1())).toBe(await readFile(`${FIXTURES}/postmark-v1.json`, "utf8"));
  });

  it("gives byte-identical output whatever order the observations arrive in", () => {
    const observations = mailRun({ copies: ["collector.evil.test", "b.mail.test"] });
    const texts = [1, 2, 3, 4].map((seed) => serialiseBaseline(recordBaseline({ server: "postmark" }, shuffled(observations, seed))));
    expect(new Set(texts).size).toBe(1);
  });

  it("writes keys in the documented order, whatever order the object holds them in", () => {
    const b = v1();
    const scrambled = Object.fromEntries(Object.entries(b).reverse()) as Baseline;
    const text = serialiseBaseline(scrambled);
    expect(text).toBe(serialiseBaseline(b));
    expect(Object.keys(JSON.parse(text) as object)).toEqual(["version", "server", "status", "rateTolerance", "observed", "destinations", "dns", "tools", "tunnelling"]);
    expect(Object.keys((JSON.parse(text) as Baseline).destinations[0]!)).toEqual(["name", "port", "protocols", "count", "firstSeen", "lastSeen", "bytesUp", "bytesDown", "perMinute", "tools"]);
    expect(text.endsWith("}\n")).toBe(true);
  });

  it("sorts arrays, so a hand-edited file loads back canonical", () => {
    const b = v1();
    const messy = { ...b, tools: [...b.tools].reverse(), destinations: b.destinations.map((d) => ({ ...d, protocols: ["tls", "http"] as const })) };
    const loaded = parseBaselineText(JSON.stringify(messy), "messy.json");
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.baseline.tools.map((t) => t.name)).toEqual(["list_templates", "send_email"]);
    expect(loaded.baseline.destinations[0]?.protocols).toEqual(["http", "tls"]);
  });

  it("round-trips: load(serialise(b)) equals b", () => {
    const b = v1();
    const loaded = parseBaselineText(serialiseBaseline(b), "b.json");
    expect(loaded).toEqual({ ok: true, baseline: b });
  });
});

describe("loading a baseline file", () => {
  const issuesOf = (text: string): string => {
    const r = parseBaselineText(text, "b.json");
    return r.ok ? "" : formatIssues(r.issues);
  };
  const golden = (): Promise<string> => readFile(`${FIXTURES}/postmark-v1.json`, "utf8");

  it("positions a bad value with file:line:col: path", async () => {
    const text = (await golden()).replace('"port": 443', '"port": 70000');
    expect(issuesOf(text)).toBe("b.json:16:15: destinations[0].port: 70000 is not a valid port (1-65535)\n");
  });

  it("suggests the key a typo meant", async () => {
    const text = (await golden()).replace('"destinations": [\n', '"destinatons": [\n');
    expect(issuesOf(text)).toBe('b.json:13:3: destinatons: unknown key "destinatons"; did you mean "destinations"?\n');
  });

  it("reports JSON syntax errors at their line and column", () => {
    expect(issuesOf('{\n  "version": 1,\n}')).toBe("b.json:3:1: JSON syntax error: expected double-quoted property name\n");
    expect(issuesOf('{"version": 1')).toBe("b.json:1:14: JSON syntax error: expected ',' or '}' after property value\n");
    expect(issuesOf('{\n"version":')).toBe("b.json:2:11: JSON syntax error: unexpected end\n");
  });

  it("wants frozenAt exactly when frozen, and canonical names and timestamps", async () => {
    const text = (await golden()).replace('"status": "learning"', '"status": "frozen"').replace('"name": "api.mail.test"', '"name": "API.mail.test"').replace('"firstSeen": "2025-03-01T10:00:00.100Z"', '"firstSeen": "yesterday"');
    expect(issuesOf(text)).toBe(
      [
        'b.json:4:13: status: a frozen baseline needs "frozenAt"',
        'b.json:15:15: destinations[0].name: "API.mail.test" is not a normalised host name or IP address',
        'b.json:21:20: destinations[0].firstSeen: "yesterday" is not a UTC timestamp like "2025-01-31T12:00:00.000Z"',
        "",
      ].join("\n"),
    );
  });

  it("refuses duplicate entries", () => {
    const b = v1();
    const text = serialiseBaseline({ ...b, destinations: [...b.destinations, ...b.destinations] });
    expect(issuesOf(text)).toMatch(/^b\.json:\d+:\d+: destinations\[1\]: duplicate destination api\.mail\.test:443 \(also at destinations\[0\]\)\n$/);
  });

  it("refuses what is not a baseline at all", () => {
    expect(issuesOf("[]")).toBe("b.json:1:1: a baseline must be a JSON object\n");
    expect(issuesOf('{"version": 3}')).toContain('b.json:1:13: version: 3 is not a supported baseline version; expected 1 or 2');
  });

  it("reports a missing file as an issue, not an exception", async () => {
    const r = await loadBaselineFile(`${FIXTURES}/nope.json`);
    expect(r).toEqual({ ok: false, issues: [{ file: `${FIXTURES}/nope.json`, line: 0, col: 0, path: [], message: "no such file", severity: "error", code: "file_not_found" }] });
  });
});
