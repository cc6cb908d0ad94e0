import type { ContainerEngine } from "../docker/container-engine.js";
import { LABEL_OWNER, LABEL_ROLE, LABEL_RUN, selectorTerms, type LabelSelector, type Labels } from "../docker/labels.js";
import { outsideScope, type OutOfScope, type PruneScope } from "./prune-scope.js";

export interface PruneOptions extends LabelSelector {
  /** Also remove Hangar's images (base, sidecar, servers). Default false: they are slow to rebuild. */
  readonly images?: boolean;
  /**
   * Which owned objects may go, by their `hangar.owner` (`<hostname>:<pid>`). Absent: all of
   * them. With it, an object whose owner it refuses stays, and so do the unowned objects of
   * the same run (its volumes); demo upstreams, which have no owner, stay too.
   */
  readonly mayTake?: (owner: string) => boolean;
  /** Objects outside it stay whatever their owner (another user's, another state directory's). Absent: no such limit. */
  readonly scope?: PruneScope;
  /** List what would go, remove nothing. */
  readonly dryRun?: boolean;
}

/** An object left in place, and why. */
export interface KeptObject {
  readonly kind: "container" | "network" | "volume";
  readonly name: string;
  readonly owner?: string;
  readonly reason: "owner" | "in-use" | "demo" | OutOfScope["reason"];
  /** For user and state-dir: whose, or which directory. */
  readonly detail?: string;
}

export interface PruneResult {
  readonly containers: number;
  readonly networks: number;
  readonly volumes: number;
  readonly images: number;
  /** What was removed (or, with dryRun, would be), by name (images by tag, or id when untagged). */
  readonly removed: {
    readonly containers: readonly string[];
    readonly networks: readonly string[];
    readonly volumes: readonly string[];
    readonly images: readonly string[];
  };
  /** Networks left in place because a container outside the selection still uses them. */
  readonly keptNetworks: readonly string[];
  /** Every object of the selection left in place, with the reason. */
  readonly kept: readonly KeptObject[];
  readonly dryRun: boolean;
}

/**
 * Removes the objects carrying Hangar's labels, optionally only those of one server or run,
 * and only those whose owner `mayTake` accepts. Containers go first (networks in use cannot
 * be removed). A network still used by a container that stays is left in place.
 */
export class Pruner {
  constructor(private readonly engine: ContainerEngine) {}

  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    const labels = selectorTerms(options);
    const dryRun = options.dryRun === true;
    const kept: KeptObject[] = [];
    const leftRuns = new Set<string>();
    /** Whether an object may go; records why not. Unowned objects follow their run's containers. */
    const takes = (kind: KeptObject["kind"], name: string, l: Labels): boolean => {
      const outside = options.scope !== undefined ? outsideScope(l, options.scope) : undefined;
      if (outside !== undefined) {
        kept.push({ kind, name, reason: outside.reason, detail: outside.detail });
        return false;
      }
      if (options.mayTake === undefined) return true;
      const owner = l[LABEL_OWNER];
      if (owner !== undefined) {
        if (options.mayTake(owner)) return true;
        kept.push({ kind, name, owner, reason: "owner" });
        return false;
      }
      if (l[LABEL_ROLE] === "demo") {
        kept.push({ kind, name, reason: "demo" });
        return false;
      }
      if (kind === "container" || leftRuns.has(l[LABEL_RUN] ?? "")) {
        kept.push({ kind, name, reason: "owner" });
        return false;
      }
      return true;
    };

    const all = await this.engine.listContainers({ labels });
    const containers = all.filter((c) => takes("container", c.name, c.labels));
    for (const c of all) if (!containers.includes(c)) leftRuns.add(c.labels[LABEL_RUN] ?? "");
    const removedIds = new Set(containers.map((c) => c.id));
    if (!dryRun) for (const c of containers) await this.engine.removeContainer(c.id);

    const networks: string[] = [];
    const keptNetworks: string[] = [];
    for (const n of await this.engine.listNetworks({ labels })) {
      if (!takes("network", n.name, n.labels)) continue;
      const info = await this.engine.inspectNetwork(n.id);
      if (info !== undefined && info.containers.some((id) => !removedIds.has(id))) {
        keptNetworks.push(n.name);
        kept.push({ kind: "network", name: n.name, reason: "in-use" });
        continue;
      }
      if (!dryRun) await this.engine.removeNetwork(n.id);
      networks.push(n.name);
    }
    const volumes = (await this.engine.listVolumes({ labels })).filter((v) => takes("volume", v.name, v.labels));
    if (!dryRun) for (const v of volumes) await this.engine.removeVolume(v.name);
    const images = options.images !== true ? [] : dryRun ? (await this.engine.listImages({ labels })).map((i) => (i.tags.length > 0 ? i.tags.join(", ") : i.id)) : await this.removeImages(labels);
    return {
      containers: containers.length,
      networks: networks.length,
      volumes: volumes.length,
      images: images.length,
      removed: { containers: containers.map((c) => c.name), networks, volumes: volumes.map((v) => v.name), images },
      keptNetworks,
      kept,
      dryRun,
    };
  }

  /**
   * A parent image (base) cannot go while images built on it remain, and the engine lists
   * them in no useful order: remove in passes until a pass removes nothing more.
   */
  private async removeImages(labels: string[]): Promise<string[]> {
    const removed: string[] = [];
    const gone = new Set<string>();
    for (;;) {
      const left = (await this.engine.listImages({ labels })).filter((i) => !gone.has(i.id));
      let progress = false;
      for (const image of left) {
        await this.engine.removeImage(image.id);
        if ((await this.engine.inspectImage(image.id)) !== undefined) continue;
        gone.add(image.id);
        removed.push(image.tags.length > 0 ? image.tags.join(", ") : image.id);
        progress = true;
      }
      if (!progress) return removed;
    }
  }
}
