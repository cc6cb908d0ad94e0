import * as z from "zod";
import { HangarError } from "../../core/errors.js";
import type { SecretMaterial } from "../../core/secrets/secret-watch.js";

/**
 * The `secrets` of the sidecar's stdin line (config `secrets: "stdin"`): what the control plane
 * hands over at every start, so that values never land in a file, an env value, a label or an
 * image. Errors name the entry and the field, never a value.
 */
const host = z.string().min(1).max(253);
const material = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  value: z.string().min(1).max(16 * 1024).optional(),
  sentinel: z.string().min(8).max(63).optional(),
  inject: z.strictObject({ host, header: z.string().min(1).max(200), format: z.string().max(200).optional() }).optional(),
  host: host.optional(),
});
const line = z.object({ secrets: z.array(material).max(256).default([]) });

export function secretsFromLine(text: string): SecretMaterial[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HangarError("HANGAR_CONFIG_INVALID", 'secrets is "stdin" but the first line on stdin is not JSON');
  }
  const result = line.safeParse(parsed);
  if (!result.success) {
    // Paths and codes only: zod's messages could quote an input, and inputs here are secret values.
    const where = result.error.issues.map((i) => `${i.path.join(".") || "(line)"} (${i.code})`).join(", ");
    throw new HangarError("HANGAR_CONFIG_INVALID", `secrets is "stdin" but the line's secrets are malformed at ${where}`);
  }
  return result.data.secrets.map((s) => {
    if (s.inject !== undefined && s.sentinel === undefined) throw new HangarError("HANGAR_CONFIG_INVALID", `secrets: ${s.name} is injected but has no sentinel`);
    return s as SecretMaterial;
  });
}
