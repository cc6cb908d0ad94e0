import { policyJsonSchema } from "../core/policy/policy-schema.js";

/** The JSON Schema as committed in policies/schema.json: pretty, with a trailing newline. */
export function policySchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
