import { policyJsonSchema } from "../core/policy/policy-schema.js";
import type { IssuePath } from "./policy-issue.js";

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  type?: string | string[];
};

/**
 * The keys a policy mapping accepts at `path`, read from the same JSON Schema the
 * editor integration uses, so the two can never disagree.
 */
export function knownKeysAt(path: IssuePath, schema: JsonSchema = policyJsonSchema() as JsonSchema): string[] {
  let node: JsonSchema | undefined = schema;
  for (const segment of path) {
    if (node === undefined) return [];
    node = step(node, segment);
  }
  const objects = node === undefined ? [] : alternatives(node).filter((s) => s.properties !== undefined);
  return [...new Set(objects.flatMap((s) => Object.keys(s.properties ?? {})))];
}

function alternatives(schema: JsonSchema): JsonSchema[] {
  return [schema, ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
}

function step(schema: JsonSchema, segment: string | number): JsonSchema | undefined {
  for (const option of alternatives(schema)) {
    if (typeof segment === "number" && option.items !== undefined) return option.items;
    if (typeof segment === "string") {
      const property = option.properties?.[segment];
      if (property !== undefined) return property;
      if (typeof option.additionalProperties === "object") return option.additionalProperties;
    }
  }
  return undefined;
}
