import { SidecarConfigSchema, type SidecarConfig } from "./sidecar-config.js";

/** Parses sidecar config JSON; errors name the source and the path, never a stack trace. */
export function parseSidecarConfig(text: string, source: string): { ok: true; config: SidecarConfig } | { ok: false; errors: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`${source}: not valid JSON: ${(err as Error).message}`] };
  }
  const result = SidecarConfigSchema.safeParse(raw);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((i) => {
      const path = i.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
      return `${source}: ${path === "" ? "(top level)" : path}: ${i.message}`;
    }),
  };
}
