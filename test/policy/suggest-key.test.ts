import { describe, expect, it } from "vitest";
import { knownKeysAt } from "../../src/policy/known-keys.js";
import { editDistance, suggestKey } from "../../src/policy/suggest-key.js";

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and adjacent swaps as one edit", () => {
    expect(editDistance("egress", "egress")).toBe(0);
    expect(editDistance("egres", "egress")).toBe(1);
    expect(editDistance("egresss", "egress")).toBe(1);
    expect(editDistance("egrass", "egress")).toBe(1);
    expect(editDistance("egerss", "egress")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
  });
});

describe("suggestKey", () => {
  it("suggests the closest key within two edits", () => {
    expect(suggestKey("egres", ["version", "egress", "tools"])).toBe("egress");
    expect(suggestKey("prots", ["ports"])).toBe("ports");
    expect(suggestKey("readonly", ["readOnly", "source"])).toBe("readOnly");
  });

  it("suggests nothing when every key is further away", () => {
    expect(suggestKey("frobnicate", ["version", "egress"])).toBeUndefined();
  });
});

describe("knownKeysAt", () => {
  it("reads the accepted keys from the policy's JSON Schema, through lists and unions", () => {
    expect(knownKeysAt([])).toEqual(["version", "name", "description", "server", "egress", "tools", "baseline"]);
    expect(knownKeysAt(["egress", "allow", 3])).toEqual(["host", "cidr", "ports", "inspect", "http"]);
    expect(knownKeysAt(["egress", "capture"])).toEqual(["ports"]);
    expect(knownKeysAt(["nowhere"])).toEqual([]);
  });
});
