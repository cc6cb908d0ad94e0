import type { Approval } from "../core/gateway/approvals.js";
import { toolGranted } from "../core/gateway/approvals.js";
import { pinManifest, pinnedSurfaces } from "../core/gateway/manifest-digest.js";
import { scanManifest, type ManifestFinding, type ManifestPeer } from "../core/gateway/manifest-scan.js";
import type { CachedManifest, ManifestCache } from "./manifest-cache.js";

/**
 * What a reviewer sees of an approval's manifest before trusting it (`hangar approve list`,
 * `request`, `grant`): the manifest scan of the tools it pinned, each flagged tool marked
 * granted or not. The tools' text comes from the manifest cache, used only when it is the
 * manifest the approval pinned (same digest); for an approval with no pin yet, the cached
 * manifest is what its first start will most likely pin. Other servers with a cached
 * manifest are the peers for shadowing and cross-server references.
 */
export type ReviewedManifest =
  /** The cached manifest is the one pinned. */
  | "pinned"
  /** Nothing pinned yet; the cached manifest (from an earlier run) was scanned. */
  | "cached"
  /** The pinned manifest is no longer in the cache (the server changed since); not scanned. */
  | "stale"
  /** Nothing pinned, nothing cached: pinned and scanned at the first start. */
  | "unknown";

export interface ApprovalReview {
  readonly manifest: ReviewedManifest;
  readonly findings: readonly ManifestFinding[];
  readonly flagged: readonly string[];
  /** Flagged tools the approval's grant names (at the digest pinned). */
  readonly granted: readonly string[];
  /** Flagged tools still withheld (ENFORCING) until a grant names them. */
  readonly ungranted: readonly string[];
}

export async function reviewApprovals(approvals: readonly Approval[], cache: ManifestCache): Promise<Map<string, ApprovalReview>> {
  const cached = new Map<string, CachedManifest>();
  for (const server of await cache.servers()) {
    const manifest = await cache.read(server);
    if (manifest !== undefined) cached.set(server, manifest);
  }
  const out = new Map<string, ApprovalReview>();
  for (const approval of approvals) out.set(approval.id, reviewApproval(approval, cached));
  return out;
}

export function reviewApproval(approval: Approval, cached: ReadonlyMap<string, CachedManifest>): ApprovalReview {
  const mine = cached.get(approval.server);
  const pinned = approval.pins.manifest;
  const none = (manifest: ReviewedManifest): ApprovalReview => ({ manifest, findings: [], flagged: [], granted: [], ungranted: [] });
  if (mine === undefined) return none(pinned !== undefined ? "stale" : "unknown");
  const current = pinManifest(mine.tools, mine);
  const surfaces = pinnedSurfaces(current) ?? {};
  if (pinned !== undefined && current.digest !== pinned.digest) return none("stale");
  const peers: ManifestPeer[] = [...cached.values()]
    .filter((m) => m.server !== approval.server)
    .map((m) => ({ server: m.server, tools: m.tools.map((t) => t.name), digests: pinManifest(m.tools).tools }));
  const scan = scanManifest(mine.tools, { server: approval.server, peers }, mine);
  const granted = scan.flagged.filter((t) => toolGranted(approval, t, Object.hasOwn(current.tools, t) ? current.tools[t] : surfaces[t]));
  return {
    manifest: pinned !== undefined ? "pinned" : "cached",
    findings: scan.findings,
    flagged: scan.flagged,
    granted,
    ungranted: scan.flagged.filter((t) => !granted.includes(t)),
  };
}
