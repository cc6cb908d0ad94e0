import { hostname } from "node:os";
import type { ContainerEngine } from "../docker/container-engine.js";
import { LABEL_OWNER, LABEL_RUN, selectorTerms } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";

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
 * Before a server starts, removes what a crashed run of the same server left behind.
 * Objects of a run whose owner process still lives are not orphans: starting then is a
 * conflict (HANGAR_SANDBOX_CONFLICT), never a silent takeover.
 */
export class OrphanReaper {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly isOwnerAlive: (owner: string) => boolean = isOwnerAliveOnThisHost,
  ) {}

  async reap(server: string, self: string): Promise<number> {
    const labels = selectorTerms({ server });
    const containers = (await this.engine.listContainers({ labels })).filter((c) => c.labels["hangar.role"] !== "image");
    const networks = await this.engine.listNetworks({ labels });
    const runs = new Map<string, string>();
    for (const o of [...containers, ...networks]) runs.set(o.labels[LABEL_RUN] ?? "", o.labels[LABEL_OWNER] ?? "");
    for (const [run, owner] of runs) {
      if (owner === self || (owner !== "" && this.isOwnerAlive(owner))) {
        throw runtimeError("HANGAR_SANDBOX_CONFLICT", `server ${server} is already running (run ${run}, owner ${owner}); stop it or prune it first`, {
          data: { server, run, owner },
        });
      }
    }
    for (const c of containers) await this.engine.removeContainer(c.id);
    for (const n of networks) await this.engine.removeNetwork(n.id);
    return containers.length + networks.length;
  }
}
