import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { ContainerEngine, ImageInfo, NetworkInfo } from "../docker/container-engine.js";
import { hangarLabels, LABEL_CONTENT, LABEL_OWNER, selectorTerms } from "../docker/labels.js";
import { runtimeError } from "../docker/runtime-error.js";
import { DEFAULT_BASE_IMAGE } from "../images/build-progress.js";
import { contentHash } from "../images/content-hash.js";
import { hangarPackageRoot } from "../images/package-root.js";
import { isOwnerAliveOnThisHost } from "../runtime/orphan-reaper.js";
import { egressNetworkSpec } from "../runtime/sandbox-specs.js";

/**
 * The demo's two upstreams of ours (images/demo-upstream), on the egress network under the
 * names the demo policy talks about: `api.allowed.test` (declared in policies/everything.yaml)
 * and `evil.test` (declared nowhere). docker-compose.yml runs the same pair; this is for
 * scripts and tests that only have dockerode.
 */

export const DEMO_UPSTREAM_IMAGE = "hangar/demo-upstream:local";
export const DEMO_ALLOWED_HOST = "api.allowed.test";
export const DEMO_EVIL_HOST = "evil.test";
export const DEMO_PORT = 80;
const DEMO_SERVER_LABEL = "demo";

export interface DemoRequest {
  readonly at: string;
  readonly from: string | null;
  readonly method: string;
  readonly host: string | null;
  readonly path: string;
}

export interface DemoUpstream {
  /** Its network alias, which is also what it answers: `hello from <name>`. */
  readonly name: string;
  readonly containerId: string;
  /** Its address on the network; the host reaches it there (the egress bridge is not internal). */
  readonly ip: string;
  /** Requests it received, `/__count` itself not included. */
  count(): Promise<number>;
  /** The latest requests (up to 100), with their Host header and path. */
  requests(): Promise<readonly DemoRequest[]>;
}

export interface DemoUpstreams extends AsyncDisposable {
  readonly allowed: DemoUpstream;
  readonly evil: DemoUpstream;
  /** Removes both containers (idempotent). The network stays: sandboxes share it. */
  stop(): Promise<void>;
}

export interface DemoUpstreamOptions {
  /** The egress network; created (with Hangar's labels) when missing. */
  readonly network: string;
  /** Base image tag (default hangar/base:local); it must exist, nothing is pulled. */
  readonly base?: string;
  readonly packageRoot?: string;
  /** Labels and names the pair; default random. */
  readonly run?: string;
  readonly owner?: string;
  readonly readyTimeoutMs?: number;
}

/** Builds hangar/demo-upstream unless an image of the same inputs exists. */
export async function ensureDemoUpstreamImage(engine: ContainerEngine, options: { base?: string; packageRoot?: string } = {}): Promise<ImageInfo> {
  const baseRef = options.base ?? DEFAULT_BASE_IMAGE;
  const base = await engine.inspectImage(baseRef);
  if (base === undefined) throw runtimeError("HANGAR_IMAGE_MISSING", `base image ${baseRef} is missing (build it first; Hangar never pulls)`);
  const contextDir = join(options.packageRoot ?? hangarPackageRoot(), "images/demo-upstream");
  // What goes into the image; the README beside them does not.
  const hash = await contentHash([
    { kind: "text", name: "base", value: base.id },
    ...(await Promise.all(["Dockerfile", "server.mjs"].map(async (name) => ({ kind: "text" as const, name, value: await readFile(join(contextDir, name), "utf8") })))),
  ]);
  const existing = await engine.inspectImage(DEMO_UPSTREAM_IMAGE);
  if (existing?.labels[LABEL_CONTENT] === hash) return existing;
  const image = await engine.buildImage({
    contextDir,
    dockerfile: "Dockerfile",
    tag: DEMO_UPSTREAM_IMAGE,
    buildArgs: { BASE: baseRef },
    labels: hangarLabels({ server: DEMO_SERVER_LABEL, role: "demo", run: DEMO_SERVER_LABEL }, { [LABEL_CONTENT]: hash }),
  });
  if (existing !== undefined && existing.id !== image.id) await engine.removeImage(existing.id, { force: false });
  return image;
}

async function ensureNetwork(engine: ContainerEngine, name: string): Promise<NetworkInfo> {
  const existing = await engine.inspectNetwork(name);
  if (existing !== undefined) return existing;
  try {
    return await engine.createNetwork(egressNetworkSpec(name));
  } catch (err) {
    // A sandbox starting at the same moment may have created it.
    const raced = await engine.inspectNetwork(name);
    if (raced !== undefined) return raced;
    throw err;
  }
}

/** Demo upstreams of a run whose process is gone (a crashed demo): their aliases would shadow ours. */
async function reapDeadDemos(engine: ContainerEngine): Promise<void> {
  for (const c of await engine.listContainers({ labels: selectorTerms({ server: DEMO_SERVER_LABEL, role: "demo" }) })) {
    const owner = c.labels[LABEL_OWNER];
    if (owner !== undefined && !isOwnerAliveOnThisHost(owner)) await engine.removeContainer(c.id);
  }
}

async function fetchCount(ip: string): Promise<{ count: number; recent: DemoRequest[] }> {
  const res = await fetch(`http://${ip}:${DEMO_PORT}/__count`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`demo upstream ${ip}: /__count answered ${res.status}`);
  return (await res.json()) as { count: number; recent: DemoRequest[] };
}

async function waitUntilServing(ip: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetchCount(ip);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw runtimeError("HANGAR_DOCKER", `demo upstream at ${ip} did not answer within ${timeoutMs} ms`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Builds the image if needed and starts `api.allowed.test` and `evil.test` on `network`,
 * hardened like a sandboxed server and labelled (role `demo`) so `hangar prune` removes them.
 * Pairs left by a crashed demo are removed first; a live pair on the same network (another
 * demo, the compose stack) would share the aliases, so run one at a time.
 */
export async function startDemoUpstreams(engine: ContainerEngine, options: DemoUpstreamOptions): Promise<DemoUpstreams> {
  const run = options.run ?? randomBytes(4).toString("hex");
  const owner = options.owner ?? `${hostname()}:${process.pid}`;
  const image = await ensureDemoUpstreamImage(engine, options);
  const network = await ensureNetwork(engine, options.network);
  await reapDeadDemos(engine);

  const started: string[] = [];
  const stop = async (): Promise<void> => {
    for (const id of started) await engine.removeContainer(id);
  };
  const startOne = async (role: "allowed" | "evil", alias: string): Promise<DemoUpstream> => {
    const id = await engine.createContainer({
      name: `hangar-demo-${run}-${role}`,
      image: image.id,
      labels: hangarLabels({ server: DEMO_SERVER_LABEL, role: "demo", run }, { [LABEL_OWNER]: owner, "hangar.demo": role }),
      env: { NAME: alias, PORT: String(DEMO_PORT) },
      user: "10001:10001",
      init: true,
      capDrop: ["ALL"],
      securityOpt: ["no-new-privileges"],
      readonlyRootfs: true,
      limits: { memoryBytes: 64 * 1024 ** 2, nanoCpus: 250_000_000, pids: 32 },
      // Port 80 without a capability.
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
      endpoint: { network: network.name, aliases: [alias] },
    });
    started.push(id);
    await engine.startContainer(id);
    const ip = (await engine.inspectContainer(id))?.addresses[network.name];
    if (ip === undefined) throw runtimeError("HANGAR_DOCKER", `demo upstream ${alias} has no address on ${network.name}`);
    await waitUntilServing(ip, options.readyTimeoutMs ?? 10_000);
    return {
      name: alias,
      containerId: id,
      ip,
      count: async () => (await fetchCount(ip)).count,
      requests: async () => (await fetchCount(ip)).recent,
    };
  };
  try {
    const allowed = await startOne("allowed", DEMO_ALLOWED_HOST);
    const evil = await startOne("evil", DEMO_EVIL_HOST);
    return { allowed, evil, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
