import { hostname } from "node:os";
import type { ContainerEngine, ContainerInfo, ContainerStatus } from "../../docker/container-engine.js";
import { LABEL_OWNER, LABEL_ROLE, LABEL_RUN, LABEL_SERVER, SHARED, selectorTerms } from "../../docker/labels.js";
import { suggestKey } from "../../policy/suggest-key.js";
import { isOwnerAliveOnThisHost } from "../../runtime/orphan-reaper.js";
import { sandboxNames } from "../../runtime/sandbox-specs.js";

/**
 * The sandboxes on this engine, reassembled from Hangar's labels: per server and run, the
 * sidecar and server containers and the internal network. Shared by ps, stop and events.
 */

/** `alive`/`dead` for an owner process on this host; `unknown` for one on another host. */
export type OwnerState = "alive" | "dead" | "unknown";

export interface SandboxContainer {
  readonly id: string;
  readonly name: string;
  readonly status: ContainerStatus;
  readonly running: boolean;
  readonly createdAt?: string;
  /** Its address on the sandbox's internal network. */
  readonly address?: string;
}

export interface SandboxEntry {
  readonly server: string;
  readonly run: string;
  /** `<hostname>:<pid>` of the process that started it. */
  readonly owner?: string;
  readonly ownerState?: OwnerState;
  readonly sidecar?: SandboxContainer;
  readonly serverContainer?: SandboxContainer;
  readonly network?: { readonly id: string; readonly name: string };
  /** When the sandbox started: its oldest container's creation. */
  readonly createdAt?: string;
}

export interface InventoryOptions {
  readonly server?: string;
  readonly run?: string;
  /** What a user typed: a server name (all its sandboxes) or a run id (that one). */
  readonly target?: string;
  readonly isOwnerAlive?: (owner: string) => boolean;
}

export function ownerState(owner: string, isAlive: (owner: string) => boolean = isOwnerAliveOnThisHost): OwnerState {
  const host = owner.slice(0, owner.lastIndexOf(":"));
  if (host !== hostname()) return "unknown";
  return isAlive(owner) ? "alive" : "dead";
}

const SANDBOX_ROLES = new Set(["sidecar", "server", "network"]);

function container(c: ContainerInfo, network: string): SandboxContainer {
  const address = c.addresses[network];
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    running: c.running,
    ...(c.createdAt !== undefined ? { createdAt: c.createdAt } : {}),
    ...(address !== undefined ? { address } : {}),
  };
}

export async function listSandboxes(engine: ContainerEngine, options: InventoryOptions = {}): Promise<SandboxEntry[]> {
  const labels = selectorTerms({ ...(options.server !== undefined ? { server: options.server } : {}), ...(options.run !== undefined ? { run: options.run } : {}) });
  const [containers, networks] = await Promise.all([engine.listContainers({ labels }), engine.listNetworks({ labels })]);
  // The shared egress network and test or demo containers are not sandboxes.
  const ours = <T extends { labels: Readonly<Record<string, string>> }>(o: T): boolean =>
    SANDBOX_ROLES.has(o.labels[LABEL_ROLE] ?? "") && o.labels[LABEL_RUN] !== SHARED && o.labels[LABEL_SERVER] !== undefined && o.labels[LABEL_RUN] !== undefined;

  const groups = new Map<string, { server: string; run: string; owner?: string; containers: ContainerInfo[]; network?: { id: string; name: string } }>();
  const group = (l: Readonly<Record<string, string>>): NonNullable<ReturnType<typeof groups.get>> => {
    const server = l[LABEL_SERVER]!;
    const run = l[LABEL_RUN]!;
    const key = `${server}\u0000${run}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { server, run, containers: [] };
      groups.set(key, g);
    }
    g.owner ??= l[LABEL_OWNER];
    return g;
  };
  for (const c of containers.filter(ours)) group(c.labels).containers.push(c);
  for (const n of networks.filter(ours)) group(n.labels).network = { id: n.id, name: n.name };

  const entries = [...groups.values()].map((g): SandboxEntry => {
    const netName = g.network?.name ?? sandboxNames({ server: g.server, run: g.run, owner: "" }).network;
    const sidecar = g.containers.find((c) => c.labels[LABEL_ROLE] === "sidecar");
    const server = g.containers.find((c) => c.labels[LABEL_ROLE] === "server");
    const created = g.containers.map((c) => c.createdAt).filter((t): t is string => t !== undefined).sort()[0];
    return {
      server: g.server,
      run: g.run,
      ...(g.owner !== undefined ? { owner: g.owner, ownerState: ownerState(g.owner, options.isOwnerAlive) } : {}),
      ...(sidecar !== undefined ? { sidecar: container(sidecar, netName) } : {}),
      ...(server !== undefined ? { serverContainer: container(server, netName) } : {}),
      ...(g.network !== undefined ? { network: g.network } : {}),
      ...(created !== undefined ? { createdAt: created } : {}),
    };
  });
  const named = options.target === undefined ? entries : entries.filter((e) => e.server === options.target || e.run === options.target);
  return named.sort((a, b) => a.server.localeCompare(b.server) || (a.createdAt ?? "").localeCompare(b.createdAt ?? "") || a.run.localeCompare(b.run));
}

/**
 * Why `server` (and `run`) matched no sandbox, for stop and events: with the closest server
 * name, or the server's runs when only the run is wrong. Lists the engine once more, so only
 * on this path.
 */
export async function noSandboxMessage(engine: ContainerEngine, server: string, run?: string): Promise<string> {
  const all = await listSandboxes(engine);
  const runsOfServer = all.filter((e) => e.server === server).map((e) => e.run);
  const missing = `no sandbox of ${server}${run !== undefined ? ` with run ${run}` : ""} (see hangar ps)`;
  if (run !== undefined && runsOfServer.length > 0) {
    const guess = suggestKey(run, runsOfServer);
    return `${missing}; ${guess !== undefined ? `did you mean run "${guess}"?` : `its runs: ${runsOfServer.join(", ")}`}`;
  }
  const guess = suggestKey(server, [...new Set(all.map((e) => e.server))]);
  return guess !== undefined ? `${missing}; did you mean "${guess}"?` : missing;
}

/** One indented line per sandbox, to choose a run from when a name matches several. */
export function formatRuns(entries: readonly SandboxEntry[]): string {
  return entries
    .map((e) => {
      const owner = e.owner === undefined ? "" : `, owner ${e.owner}${e.ownerState !== undefined ? ` (${e.ownerState})` : ""}`;
      return `  run ${e.run}: ${e.server}${e.createdAt !== undefined ? `, started ${e.createdAt}` : ""}${owner}`;
    })
    .join("\n");
}

/** "45s", "4m05s", "2h03m", "3d04h". */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number): string => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor((s % 86_400) / 3600))}h`;
}
