import type { Approval } from "../core/gateway/approvals.js";
import { pinnedSurfaces, type PinnedManifest } from "../core/gateway/manifest-digest.js";
import { describeSource } from "../core/gateway/source-pins.js";

/**
 * What an approval changes from the server's last grant (`hangar approve list --diff`): the
 * source, the command, the policy's lines and the tool manifest. A reviewer grants the
 * difference, not the whole server again. Pure: approvals in, a structured diff out.
 */
export interface ApprovalDiff {
  readonly approval: string;
  readonly server: string;
  /** The approval whose grant this is compared with; absent when the server was never granted. */
  readonly since?: string;
  readonly source?: { readonly from: string; readonly to: string };
  readonly command?: { readonly from: string; readonly to: string };
  /** Unified-style lines ("+ ", "- ", "  " for context); absent when the policy is unchanged. */
  readonly policy?: readonly string[];
  /** Set when a side has no policy text recorded (requests made before it was), but the digest differs. */
  readonly policyDigest?: { readonly from: string; readonly to: string };
  /** Tools by name; prompts, resources and templates by surface key (`prompt:greet`) when both pins hold them. */
  readonly tools?: { readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly string[] };
}

/** The grant `approval` is measured against: the latest other grant of its server before it was decided. */
export function lastGrantBefore(approvals: readonly Approval[], approval: Approval): Approval | undefined {
  const limit = approval.status === "pending" ? Number.POSITIVE_INFINITY : approval.seq;
  let best: Approval | undefined;
  for (const a of approvals) {
    if (a.id === approval.id || a.server !== approval.server || (a.status !== "granted" && a.status !== "revoked") || a.seq >= limit) continue;
    if (best === undefined || a.seq > best.seq) best = a;
  }
  return best;
}

const commandLine = (a: Approval): string => [...(a.pins.command ?? []), ...a.pins.args].join(" ");

export function diffApproval(approvals: readonly Approval[], approval: Approval): ApprovalDiff {
  const base = { approval: approval.id, server: approval.server };
  const previous = lastGrantBefore(approvals, approval);
  const current = approval.pins;
  if (previous === undefined) {
    return {
      ...base,
      source: { from: "(never granted)", to: describeSource(current.source) },
      command: { from: "", to: commandLine(approval) },
      ...(approval.policyText !== undefined ? { policy: approval.policyText.trimEnd().split("\n").map((l) => `+ ${l}`) } : {}),
      ...(current.manifest !== undefined ? { tools: { added: Object.keys({ ...current.manifest.tools, ...pinnedSurfaces(current.manifest) }).sort(), removed: [], changed: [] } } : {}),
    };
  }
  const was = previous.pins;
  const from = describeSource(was.source);
  const to = describeSource(current.source);
  const policy =
    previous.policyText !== undefined && approval.policyText !== undefined && previous.policyText !== approval.policyText ? lineDiff(previous.policyText, approval.policyText) : undefined;
  const digestOnly = policy === undefined && was.policyDigest !== current.policyDigest && (previous.policyText === undefined || approval.policyText === undefined);
  return {
    ...base,
    since: previous.id,
    ...(from !== to ? { source: { from, to } } : {}),
    ...(commandLine(previous) !== commandLine(approval) ? { command: { from: commandLine(previous), to: commandLine(approval) } } : {}),
    ...(policy !== undefined ? { policy } : {}),
    ...(digestOnly ? { policyDigest: { from: was.policyDigest, to: current.policyDigest } } : {}),
    ...toolChanges(withSurfaces(was.manifest, current.manifest), withSurfaces(current.manifest, was.manifest)),
  };
}

/**
 * A pin's tools, and its prompts, resources and templates by surface key when both pins have
 * them (a tools-only pin beside a newer one would show every prompt as added).
 */
function withSurfaces(pin: PinnedManifest | undefined, other: PinnedManifest | undefined): Readonly<Record<string, string>> | undefined {
  if (pin === undefined) return undefined;
  const mine = pinnedSurfaces(pin);
  return mine !== undefined && other !== undefined && pinnedSurfaces(other) !== undefined ? { ...pin.tools, ...mine } : pin.tools;
}

function toolChanges(before: Readonly<Record<string, string>> | undefined, after: Readonly<Record<string, string>> | undefined): Pick<ApprovalDiff, "tools"> {
  if (before === undefined || after === undefined) return {};
  const added = Object.keys(after).filter((t) => !Object.hasOwn(before, t)).sort();
  const removed = Object.keys(before).filter((t) => !Object.hasOwn(after, t)).sort();
  const changed = Object.keys(after).filter((t) => Object.hasOwn(before, t) && before[t] !== after[t]).sort();
  return added.length + removed.length + changed.length === 0 ? {} : { tools: { added, removed, changed } };
}

/** A policy is a few hundred lines at most; past this the diff says only that it changed. */
const MAX_DIFF_LINES = 4000;

/** Lines of `a` → `b` by longest common subsequence, each prefixed "- ", "+ " or "  ". */
export function lineDiff(a: string, b: string): string[] {
  const x = a.trimEnd().split("\n");
  const y = b.trimEnd().split("\n");
  if (x.length + y.length > MAX_DIFF_LINES) return [`- (${x.length} lines)`, `+ (${y.length} lines)`];
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push(`  ${x[i]}`);
      i++;
      j++;
    } else if (i < x.length && (j === y.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${x[i++]}`);
    else out.push(`+ ${y[j++]}`);
  }
  return out;
}

export function formatApprovalDiff(diff: ApprovalDiff): string {
  const lines = [`${diff.approval} ${diff.server}: ${diff.since !== undefined ? `changes since the grant of ${diff.since}` : "no earlier grant of this server: everything is new"}`];
  if (diff.source !== undefined) lines.push(`  source    ${diff.source.from} → ${diff.source.to}`);
  if (diff.command !== undefined) lines.push(`  command   ${diff.command.from || "(none)"} → ${diff.command.to}`);
  if (diff.policyDigest !== undefined) lines.push(`  policy    sha256 ${diff.policyDigest.from.slice(0, 12)}… → ${diff.policyDigest.to.slice(0, 12)}… (no policy text recorded to show the lines)`);
  if (diff.policy !== undefined) lines.push("  policy", ...diff.policy.map((l) => `    ${l}`));
  if (diff.tools !== undefined) {
    const { added, removed, changed } = diff.tools;
    const parts = [...(added.length > 0 ? [`added ${added.join(", ")}`] : []), ...(removed.length > 0 ? [`removed ${removed.join(", ")}`] : []), ...(changed.length > 0 ? [`changed ${changed.join(", ")}`] : [])];
    lines.push(`  tools     ${parts.join("; ")}`);
  }
  if (lines.length === 1) lines.push("  nothing changed");
  return `${lines.join("\n")}\n`;
}
