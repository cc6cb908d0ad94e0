import { canonicalJson } from "../audit/canonical-json.js";
import { sha256Hex } from "../audit/hash-chain.js";
import type { Policy } from "../policy/policy-schema.js";
import type { PinnedManifest } from "./manifest-digest.js";

/**
 * What an approval pins, so that any change to what runs needs a new approval:
 *  - the source: npm package + exact version + integrity, or image ref + digest, or the
 *    build context, plus the command and arguments;
 *  - the whole policy, as a digest of its validated form (egress rules, mounts, secrets'
 *    names: widening what a server may do is a change too);
 *  - the tool manifest, when it is known (see manifest-digest.ts).
 */
export type SourcePin =
  | { readonly kind: "npm"; readonly package: string; readonly version: string; readonly integrity?: string }
  | { readonly kind: "image"; readonly ref: string; readonly digest?: string }
  | { readonly kind: "build"; readonly context: string; readonly dockerfile: string };

export interface RunPins {
  readonly source: SourcePin;
  readonly command?: readonly string[];
  readonly args: readonly string[];
  readonly policyDigest: string;
}

export interface ApprovalPins extends RunPins {
  readonly manifest?: PinnedManifest;
}

export function runPins(policy: Policy): RunPins {
  const s = policy.server;
  let source: SourcePin;
  if (s.npm !== undefined) source = { kind: "npm", package: s.npm.package, version: s.npm.version, ...(s.npm.integrity !== undefined ? { integrity: s.npm.integrity } : {}) };
  else if (s.image !== undefined) source = { kind: "image", ref: s.image.ref, ...(s.image.digest !== undefined ? { digest: s.image.digest } : {}) };
  else source = { kind: "build", context: s.build?.context ?? ".", dockerfile: s.build?.dockerfile ?? "Dockerfile" };
  return { source, ...(s.command !== undefined ? { command: s.command } : {}), args: s.args, policyDigest: policyDigest(policy) };
}

export function policyDigest(policy: Policy): string {
  return sha256Hex(canonicalJson(policy));
}

/** What differs between approved and current run pins, in words; empty when nothing does. */
export function pinDifferences(approved: RunPins, current: RunPins): string[] {
  const out: string[] = [];
  if (canonicalJson(approved.source) !== canonicalJson(current.source)) out.push(`source ${describeSource(approved.source)} → ${describeSource(current.source)}`);
  if (canonicalJson(approved.command ?? null) !== canonicalJson(current.command ?? null) || canonicalJson(approved.args) !== canonicalJson(current.args)) {
    out.push(`command ${[...(approved.command ?? []), ...approved.args].join(" ")} → ${[...(current.command ?? []), ...current.args].join(" ")}`);
  }
  if (approved.policyDigest !== current.policyDigest) out.push(`policy digest ${approved.policyDigest.slice(0, 12)}… → ${current.policyDigest.slice(0, 12)}…`);
  return out;
}

export function describeSource(source: SourcePin): string {
  switch (source.kind) {
    case "npm":
      return `npm ${source.package}@${source.version}${source.integrity !== undefined ? ` (${source.integrity.slice(0, 19)}…)` : " (no integrity)"}`;
    case "image":
      return `image ${source.ref}${source.digest !== undefined ? `@${source.digest}` : " (no digest)"}`;
    case "build":
      return `build ${source.context} (${source.dockerfile})`;
  }
}
