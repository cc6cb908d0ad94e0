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
    let networks = 0;
    for (const n of await this.engine.listNetworks({ labels })) {
      const info = await this.engine.inspectNetwork(n.id);
      if (info !== undefined && info.containers.length > 0) continue;
      await this.engine.removeNetwork(n.id);
      networks += 1;
    }
    const volumes = await this.engine.listVolumes({ labels });
    for (const v of volumes) await this.engine.removeVolume(v.name);
    let images = 0;
    if (options.images === true) {
      for (const i of await this.engine.listImages({ labels })) {
        await this.engine.removeImage(i.id);
        images += 1;
      }
    }
    return { containers: containers.length, networks, volumes: volumes.length, images };
  }
}
