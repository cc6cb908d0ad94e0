import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { editorSchemas, editorSchemaText } from "../../src/cli/editor-schemas.js";
import { hangar } from "./capture-io.js";

describe("editor schemas for hangar.yaml and scenario files", () => {
  for (const schema of editorSchemas()) {
    it(`${schema.file} is up to date (regenerate with: npm run schema)`, async () => {
      expect(await readFile(schema.file, "utf8")).toBe(editorSchemaText(schema));
      expect((await hangar(["config", "schema", "--for", schema.name, "--check", schema.file])).code).toBe(0);
    });

    it(`${schema.name}: every field has a description, for hover text`, () => {
      expect(schema.undescribed).toEqual([]);
    });
  }

  it("describes the fields the configuration accepts, approvals included", () => {
    const [config] = editorSchemas();
    const properties = config?.schema["properties"] as Record<string, { description?: string; properties?: Record<string, { description?: string }> }>;
    expect(Object.keys(properties)).toEqual(expect.arrayContaining(["servers", "audit", "rbac", "gateway", "runtime", "approvals"]));
    expect(properties["approvals"]?.properties?.["requireDistinctGranter"]?.description).toMatch(/second person/);
  });

  it("--check reports a stale file, exit 1; an unknown --for is a usage error", async () => {
    const stale = await hangar(["config", "schema", "--check", "package.json"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain("out of date; regenerate it with: hangar config schema --for hangar --out package.json");
    expect((await hangar(["config", "schema", "--for", "policy"])).code).toBe(2);
  });
});
