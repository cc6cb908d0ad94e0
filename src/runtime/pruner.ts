import type { ContainerEngine } from "../docker/container-engine.js";
import { selectorTerms, type LabelSelector } from "../docker/labels.js";

export interface PruneOptions extends LabelSelector {
  /** Also remove Hangar's images (base, sidecar, servers). Default false: they are slow to rebuild. */
  readonly images?: boolean;
}

export interface PruneResult {
  readonly containers: number;
  readonly networks: number;
  readonly volumes: number;
  readonly images: number;
  /** What was removed, by name (images by tag, or id when untagged). */
  readonly removed: {
    readonly containers: readonly string[];
    readonly networks: readonly string[];
    readonly volumes: readonly string[];
    readonly images: readonly string[];
  };
  /** Networks left in place because a container outside the selection still uses them. */
  readonly keptNetworks: readonly string[];
}

/**
 * Removes every object carrying Hangar's labels, optionally only those of one server or
 * run. Containers go first (networks in use cannot be removed). A shared network still
 * used by a live sandbox outside the selection is left in place.
 */
export class Pruner {
  constructor(private readonly engine: ContainerEngine) {}

  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    const labels = selectorTerms(options);
    const containers = await this.engine.listContainers({ labels });
    for (const c of containers) await this.engine.removeContainer(c.id);
    const networks: string[] = [];
    const keptNetworks: string[] = [];
    for (const n of await this.engine.listNetworks({ labels })) {
      const info = await this.engine.inspectNetwork(n.id);
      if (info !== undefined && info.containers.length > 0) {
        keptNetworks.push(n.name);
        continue;
      }
      await this.engine.removeNetwork(n.id);
      networks.push(n.name);
    }
    const volumes = await this.engine.listVolumes({ labels });
    for (const v of volumes) await this.engine.removeVolume(v.name);
    const images = options.images === true ? await this.removeImages(labels) : [];
    return {
      containers: containers.length,
      networks: networks.length,
      volumes: volumes.length,
      images: images.length,
      removed: { containers: containers.map((c) => c.name), networks, volumes: volumes.map((v) => v.name), images },
      keptNetworks,
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
