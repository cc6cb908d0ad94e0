import { stringify } from "yaml";
import type { PolicyInput } from "../core/policy/policy-schema.js";

/**
 * What `hangar quarantine` inspects: a policy file, or a server named directly by its npm
 * package (`npm:pkg@1.2.3`, `npm:@scope/pkg@1.2.3`) or a local image (`image:ref`), for
 * which a deny-all capture policy is written. Pure.
 */
export type QuarantineTarget =
  | { readonly kind: "policy"; readonly file: string }
  | { readonly kind: "npm"; readonly text: string; readonly package: string; readonly version: string }
  | { readonly kind: "image"; readonly text: string; readonly ref: string };

export type TargetParse = { readonly ok: true; readonly target: QuarantineTarget } | { readonly ok: false; readonly message: string };

/** Ports captured when no policy says otherwise: web ports, plain and TLS. */
export const QUARANTINE_CAPTURE_PORTS: readonly number[] = [80, 443, 8080, 8443];

export function parseQuarantineTarget(text: string): TargetParse {
  if (text.startsWith("npm:")) {
    const spec = text.slice(4);
    const at = spec.lastIndexOf("@");
    if (at <= 0) return { ok: false, message: `${JSON.stringify(text)} names no version; write npm:<package>@<exact version>, e.g. npm:@modelcontextprotocol/server-everything@2026.8.31` };
    return { ok: true, target: { kind: "npm", text, package: spec.slice(0, at), version: spec.slice(at + 1) } };
  }
  if (text.startsWith("image:")) {
    const ref = text.slice(6);
    if (ref.length === 0) return { ok: false, message: `${JSON.stringify(text)} names no image; write image:<ref>, e.g. image:my/server:1.0` };
    return { ok: true, target: { kind: "image", text, ref } };
  }
  return { ok: true, target: { kind: "policy", file: text } };
}

/** A policy name (lowercase, digits, "-", at most 63) from a package name or image ref. */
export function quarantineName(target: Exclude<QuarantineTarget, { kind: "policy" }>): string {
  const source = target.kind === "npm" ? target.package.replace(/^@[^/]+\//, "") : (target.ref.split("@")[0] ?? "").split("/").at(-1)?.split(":")[0] ?? "";
  const slug = source
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `quarantine-${slug}`.slice(0, 63).replace(/-+$/, "") || "quarantine";
}

/** The deny-all capture policy for a server named on the command line, as YAML (validated by the caller). */
export function quarantinePolicyText(target: Exclude<QuarantineTarget, { kind: "policy" }>, args: readonly string[]): string {
  const server: PolicyInput["server"] = target.kind === "npm" ? { npm: { package: target.package, version: target.version } } : { image: { ref: target.ref } };
  const policy: PolicyInput = {
    version: 1,
    name: quarantineName(target),
    description: `Quarantine of ${target.text}: deny all egress, record every attempt`,
    server: { ...server, ...(args.length > 0 ? { args: [...args] } : {}) },
    egress: { allow: [], capture: { ports: [...QUARANTINE_CAPTURE_PORTS] } },
  };
  return `# Written by hangar quarantine for ${target.text}.\n${stringify(policy)}`;
}
