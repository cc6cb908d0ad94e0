import { hostname } from "node:os";
import type { ContainerEngine } from "../docker/container-engine.js";
import { LABEL_OWNER, LABEL_ROLE, LABEL_RUN, selectorTerms } from "../docker/labels.js";

/** A `<hostname>:<pid>` owner is alive when it is on this host and the pid answers; elsewhere we cannot tell, so yes. */
export function isOwnerAliveOnThisHost(owner: string): boolean {
  const colon = owner.lastIndexOf(":");
  const host = owner.slice(0, colon);
  const pid = Number(owner.slice(colon + 1));
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return host !== hostname();
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes one run's sandbox objects: its containers (forced: killed, then removed) all at
 * once, then its network, which Docker refuses while a container is attached. Idempotent.
 * Returns how many objects it removed.
 */
export async function removeRun(engine: ContainerEngine, target: { readonly server: string; readonly run: string }): Promise<number> {
  const labels = selectorTerms(target);
  const containers = (await engine.listContainers({ labels })).filter((c) => c.labels[LABEL_ROLE] !== "image");
  await Promise.all(containers.map((c) => engine.removeContainer(c.id)));
  const networks = await engine.listNetworks({ labels });
  await Promise.all(networks.map((n) => engine.removeNetwork(n.id)));
  return containers.length + networks.length;
}

/**
 * Before a server starts, removes what crashed runs of the same server left behind: the runs
 * whose owner process is dead. Runs with a live owner (another client's `hangar run`, or an
 * owner on another host) are left alone: any number of sandboxes of one server run side by side.
 */
export class OrphanReaper {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly isOwnerAlive: (owner: string) => boolean = isOwnerAliveOnThisHost,
  ) {}

  async reap(server: string): Promise<number> {
    const labels = selectorTerms({ server });
    const [containers, networks] = await Promise.all([this.engine.listContainers({ labels }), this.engine.listNetworks({ labels })]);
    const owners = new Map<string, string>();
    for (const o of [...containers, ...networks]) {
      if (o.labels[LABEL_ROLE] === "image") continue;
      owners.set(o.labels[LABEL_RUN] ?? "", o.labels[LABEL_OWNER] ?? "");
    }
    let removed = 0;
    for (const [run, owner] of owners) {
      // A run without an owner label predates owners, or was never finished: nobody lives behind it.
      if (owner !== "" && this.isOwnerAlive(owner)) continue;
      removed += await removeRun(this.engine, { server, run });
    }
    return removed;
  }
}
