import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import * as ajvFormats from "ajv-formats";

/**
 * Validates SARIF against the SARIF 2.1.0 JSON schema (draft-07), vendored byte for byte at
 * test/fixtures/sarif-schema-2.1.0.json from the npm package @datadog/datadog-ci@2.48.0
 * (dist/commands/sarif/json-schema/sarif-schema-2.1.0.json, Apache-2.0; sha256
 * 10666d46649b52e262001e70d43e6c52f7c0279ca3dbdfe9a7dc2e4071556454), which ships the
 * OASIS schema as published in the oasis-tcs/sarif-spec repository. The OASIS errata 01
 * (draft-04) tightened it in one way that concerns us, checked here besides: every region
 * must say where it starts (startLine, charOffset or byteOffset).
 */
const SCHEMA_FILE = new URL("../../fixtures/sarif-schema-2.1.0.json", import.meta.url);

// ajv-formats is CommonJS with `exports.default`: under NodeNext the plugin is the namespace's default.
const addFormats = ajvFormats.default.default;

// Strict mode lints schema style, and the official schema trips one (anyOf: [{ required: ["index"] }]
// beside properties); validation itself is the same.
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, "utf8")) as object);

/** Every violation as `path: message`; empty when the log is valid SARIF 2.1.0. */
export function sarifProblems(log: unknown): string[] {
  const problems = validate(log) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || "/"}: ${e.message ?? e.keyword}`);
  walkRegions(log, "", (path, region) => {
    if (!["startLine", "charOffset", "byteOffset"].some((k) => k in region)) problems.push(`${path}: a region needs startLine, charOffset or byteOffset (errata 01)`);
  });
  return problems;
}

function walkRegions(value: unknown, path: string, visit: (path: string, region: Record<string, unknown>) => void): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walkRegions(v, `${path}/${i}`, visit));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "region" && v !== null && typeof v === "object") visit(`${path}/region`, v as Record<string, unknown>);
      walkRegions(v, `${path}/${k}`, visit);
    }
  }
}
