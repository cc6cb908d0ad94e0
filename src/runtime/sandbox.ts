import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { rootCertificates } from "node:tls";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { loadBaselineFile } from "../baseline/load-baseline.js";
import { asFrozen } from "../core/baseline/baseline-schema.js";
import { serialiseBaseline } from "../core/baseline/canonical.js";
import { HangarError } from "../core/errors.js";
import { formatIssues } from "../policy/format-issues.js";
import type { Mode, Policy } from "../core/policy/policy-schema.js";
import type { ContainerEngine, NetworkInfo } from "../docker/container-engine.js";
import { hasRuntimeCode, runtimeError } from "../docker/runtime-error.js";
import { assertIsolationAvailable, chooseIsolation, ociRuntimeFor, resolvConfFor, type IsolationChoice } from "../docker/isolation.js";
import { EventChannel } from "./event-channel.js";
import { OrphanReaper } from "./orphan-reaper.js";
import type { OwnerWatchdog } from "./owner-watchdog.js";
import type { RuntimeConfig, ServerTransport } from "./runtime-config.js";
import { runtimeEvent, type SandboxEvent } from "./sandbox-events.js";
import {
  BRIDGE_SOCKET_NAME,
  COUNTERS_FILE_NAME,
  egressNetworkSpec,
  internalNetworkSpec,
  serverContainerSpec,
  sidecarContainerSpec,
  type CaptureOverride,
  type SandboxIdentity,
} from "./sandbox-specs.js";
import { SidecarSupervisor } from "./sidecar-supervisor.js";
import { DEFAULT_NETNS_IMAGE } from "../images/netns-image-builder.js";
import { GatewayInstaller } from "./sandbox-gateway.js";
import { sandboxSecrets } from "./sandbox-secrets.js";
import { createSandboxCa, type CaMaterial } from "../sidecar/proxy/tls/sandbox-ca.js";
import { GATE_FILE_NAME, GATE_OPEN_LINE, GATE_SOURCE } from "./start-gate.js";
import { StartPhases } from "./start-phases.js";
import { defaultStateDir } from "./state-dir.js";
import { StartedSandbox } from "./started-sandbox.js";
import { candidateSubnets, type SandboxSubnet } from "./subnet-allocator.js";
import { toLimits } from "./resource-limits.js";
import { bridgeBundlePath } from "../bridge/bridge-bundle.js";

export interface SandboxDeps {
  readonly engine: ContainerEngine;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly newRunId?: () => string;
  /** `<hostname>:<pid>` recorded on every object, to tell a crashed run from a live one. */
  readonly owner?: string;
  readonly isOwnerAlive?: (owner: string) => boolean;
  /** Removes a sandbox whose owner (this process) dies before stopping it. Without one, only the next start of its server reaps it. */
  readonly watchdog?: OwnerWatchdog;
}

export interface SandboxStartOptions {
  readonly policy: Policy;
  /** The policy file on the host: copied for the sidecar; relative mounts resolve against it. */
  readonly policyFile: string;
  readonly runtime: RuntimeConfig;
  /** The server image and how to run it (a ServerImage from the image builders fits). */
  readonly image: { readonly id: string; readonly entrypoint?: readonly string[]; readonly cmd?: readonly string[] };
  readonly mode?: Mode;
  /** Turns capture on for this run whatever the policy says (replay, quarantine); never off. */
  readonly capture?: CaptureOverride;
  /**
   * A frozen baseline for the sidecar to enforce, or false for none. Default: the policy's
   * `baseline.file` (relative to the policy file) when it names one. Checked before anything starts.
   */
  readonly baselineFile?: string | false;
  readonly run?: string;
  /** Where secret values are read from; default process.env. */
  readonly secretSource?: Readonly<Record<string, string | undefined>>;
  /** Parent of the per-run policy folder, and a label of everything the run creates; default defaultStateDir(). */
  readonly stateDir?: string;
  /** Subscribed before anything starts, so it sees the sidecar's `started` event too. */
  readonly onEvent?: (event: SandboxEvent) => void;
  /** At stop, also remove the egress network if Hangar created it and no other sandbox uses it (hangar run: the last one out). */
  readonly removeEgressWhenUnused?: boolean;
  /**
   * "http": the server runs under the stdio↔HTTP bridge and the started sandbox's `mcpSocket` is
   * its MCP endpoint (the gateway passes hangar.yaml's runtime.transport). Default "stdio": MCP on
   * the attached stdio, which `hangar run`, replay and quarantine speak.
   */
  readonly transport?: ServerTransport;
}

const SUBNET_ATTEMPTS = 16;

/**
 * Starts sandboxes: per run an internal network with no route out and no host address, a
 * sidecar on it and on the egress network, and the hardened server behind it. Every start is
 * a run of its own (id, names, subnet), so any number of sandboxes of one server coexist.
 */
export class Sandbox {
  private readonly now: () => number;
  private readonly owner: string;
  private readonly reaper: OrphanReaper;

  constructor(private readonly deps: SandboxDeps) {
    this.now = deps.now ?? Date.now;
    this.owner = deps.owner ?? `${hostname()}:${process.pid}`;
    this.reaper = new OrphanReaper(deps.engine, deps.isOwnerAlive);
  }

  async start(options: SandboxStartOptions): Promise<StartedSandbox> {
    const { engine, logger } = this.deps;
    const { policy } = options;
    const settings = options.runtime.runtime;
    const run = options.run ?? this.deps.newRunId?.() ?? randomBytes(4).toString("hex");
    const id: SandboxIdentity = { server: policy.name, run, owner: this.owner, stateDir: resolve(options.stateDir ?? defaultStateDir()) };
    // Injected secrets: a sentinel for the server, the value for the sidecar's stdin alone.
    const secrets = sandboxSecrets(policy, options.secretSource ?? process.env, {
      random: (n) => randomBytes(n),
      watched: settings.watchedSecrets ?? [],
      capturing: options.capture !== undefined || policy.egress.capture !== false,
    });
    const phases = new StartPhases();
    // Independent checks, in parallel: a file read and one engine round trip.
    const [baseline, sidecarImage] = await phases.time("checks", () => Promise.all([frozenBaselineText(options, logger), engine.inspectImage(settings.sidecar.image)]));
    if (sidecarImage === undefined) throw runtimeError("HANGAR_IMAGE_MISSING", `sidecar image ${settings.sidecar.image} is missing (build it first)`);
    const isolation = chooseIsolation(policy.server, options.policyFile, settings.isolation);
    await assertIsolationAvailable(engine, isolation);
    // gVisor's netstack reads the netns once at start; the gateway's later routes would not apply.
    if (settings.catchAll && isolation.isolation === "gvisor") {
      throw runtimeError("HANGAR_ISOLATION_UNAVAILABLE", `runtime.catchAll in hangar.yaml does not work with gVisor (${isolation.source}); use runc or turn catchAll off`);
    }
    // The control plane reaches the bridge through a Unix socket on a shared folder; gVisor does not let the host connect to one made inside it.
    const transport = options.transport ?? "stdio";
    if (transport === "http" && isolation.isolation === "gvisor") {
      throw runtimeError("HANGAR_ISOLATION_UNAVAILABLE", `runtime.transport "http" in hangar.yaml does not work with gVisor (${isolation.source}) in Docker; use transport "stdio" or runc`);
    }
    const bridgeFile = transport === "http" ? await bridgeBundlePath() : undefined;
    if (settings.catchAll && (await engine.inspectImage(DEFAULT_NETNS_IMAGE)) === undefined) {
      throw runtimeError("HANGAR_IMAGE_MISSING", `runtime.catchAll needs the ${DEFAULT_NETNS_IMAGE} image (build it with images/netns/build-netns.sh)`);
    }

    // The reaper removes only dead owners' runs of this server, never the shared egress network.
    const [, egress] = await phases.time("reap+egress", () => Promise.all([this.reaper.reap(id.server), this.ensureEgressNetwork(settings.egressNetwork)]));
    const cleanup: Array<() => Promise<unknown>> = [];
    const events = new EventChannel<SandboxEvent>();
    if (options.onEvent) events.subscribe(options.onEvent);
    // Watching before anything exists: whenever this process dies from here on, what it made goes.
    const watch = this.deps.watchdog?.watch({ server: id.server, run: id.run });
    cleanup.push(async () => watch?.release());
    try {
      const [policyDir, { network, subnet }] = await settled(
        this.writePolicy(options, id, baseline).then((dir) => {
          cleanup.push(() => rm(dir, { recursive: true, force: true }));
          watch?.alsoRemove(dir);
          return dir;
        }),
        phases.time("network", () => this.createInternalNetwork(id, settings.sandboxSubnets)).then((created) => {
          cleanup.push(() => engine.removeNetwork(created.network.id));
          return created;
        }),
      );

      // A rule that inspects gets a sandbox CA of its own: the server trusts its certificate,
      // and its key goes only to the sidecar, down stdin.
      // Capture (replay, quarantine) terminates TLS too, to record each request's shape.
      const capturing = options.capture !== undefined || policy.egress.capture !== false;
      const ca = inspects(policy) || capturing ? await phases.time("ca", () => createSandboxCa({ name: policy.name, now: this.now() })) : undefined;
      const caDir = ca === undefined ? undefined : await this.writeCaFiles(policyDir, ca);
      const upstreamCa = ca !== undefined && settings.upstreamCaFile !== undefined ? await copyUpstreamCa(settings.upstreamCaFile, policyDir) : false;
      const overrides = {
        ...(options.mode ? { mode: options.mode } : {}),
        ...(options.capture !== undefined ? { capture: options.capture } : {}),
        ...(baseline !== undefined ? { baseline: true } : {}),
        ...(ca !== undefined ? { tls: { upstreamCa } } : {}),
        ...(secrets.sidecar.length > 0 ? { secrets: true } : {}),
      };
      // runtime.catchAll: set up once the server's netns exists, and again in each restarted sidecar's.
      let reinstallGateway = async (): Promise<void> => undefined;
      // Start-up CPU boost: both containers are created without their CPU quota, set later.
      const cpuBoost = settings.startCpuBoostMs > 0;
      // runsc cannot change a running sandbox's limits (no `update`): a gVisor server gets its quota at creation.
      const serverBoost = cpuBoost && ociRuntimeFor(isolation.isolation) === undefined;
      // The sidecar's container runs (its netns exists) before its node is ready: a gated server's catch-all routes go in meanwhile.
      let sidecarRunning: (id: string | undefined) => void = () => undefined;
      const sidecarContainer = new Promise<string | undefined>((resolveRunning) => (sidecarRunning = resolveRunning));
      const sidecarReady = phases.time("sidecar", async () => {
        const sidecarId = await engine.createContainer(sidecarContainerSpec({ id, subnet, runtime: settings, policyDir, cpuBoost, ...overrides }));
        cleanup.push(() => engine.removeContainer(sidecarId));
        await engine.connectNetwork(sidecarId, { network: egress.name });
        const supervisor = new SidecarSupervisor({
          engine,
          containerId: sidecarId,
          server: id.server,
          network: network.name,
          address: subnet.sidecar,
          readyTimeoutMs: settings.sidecar.readyTimeoutMs,
          maxRestarts: settings.sidecar.maxRestarts,
          logger,
          publish: (event) => events.publish(event),
          now: this.now,
          countersFile: join(policyDir, COUNTERS_FILE_NAME),
          ...(settings.catchAll ? { afterRestart: () => reinstallGateway() } : {}),
          onContainerStarted: () => sidecarRunning(sidecarId),
          ...(ca !== undefined || secrets.sidecar.length > 0
            ? { stdinLine: JSON.stringify({ ...(ca !== undefined ? { caCertPem: ca.certPem, caKeyPem: ca.keyPem } : {}), ...(secrets.sidecar.length > 0 ? { secrets: secrets.sidecar } : {}) }) }
            : {}),
        });
        cleanup.push(() => supervisor.stop(1));
        await supervisor.start();
        // It serves: from now on it runs under its quota, restarts included (docker update persists).
        if (cpuBoost) await phases.time("sidecar-limit", () => engine.updateCpuLimit(sidecarId, toLimits(settings.sidecar).nanoCpus));
        return { sidecarId, supervisor };
      });

      // Created and attached while the sidecar starts: that needs only the network. A node
      // server is started too, held by its start gate (start-gate.ts) until the sidecar serves.
      const gateFile = join(policyDir, GATE_FILE_NAME);
      const serverCreated = phases.time("server-create", async () => {
        const gvisor = await gvisorSettings(isolation, policyDir, subnet.sidecar);
        const bridge = bridgeFile === undefined ? undefined : { file: bridgeFile, socketDir: await bridgeSocketDir(policyDir) };
        const spec = serverContainerSpec({
          id,
          subnet,
          policy,
          policyFile: options.policyFile,
          image: options.image,
          secrets: secrets.serverEnv,
          gateFile,
          cpuBoost: serverBoost,
          ...(caDir !== undefined ? { caDir } : {}),
          ...(gvisor ? { gvisor } : {}),
          ...(bridge ? { bridge } : {}),
        });
        // Gated when its command starts node (serverCommand): then, and only then, the gate is mounted.
        const gated = spec.mounts?.some((m) => m.source === gateFile) === true;
        if (gated) await writeFile(gateFile, GATE_SOURCE, { mode: 0o644 });
        const serverId = await engine.createContainer(spec);
        cleanup.push(() => engine.removeContainer(serverId));
        const stdio = await engine.attach(serverId, { stdin: true });
        cleanup.push(async () => stdio.close());
        if (gated) await phases.time("server-start", () => engine.startContainer(serverId));
        return { serverId, stdio, gated };
      });
      // runtime.catchAll: the veth, nft rules and routes need both namespaces, not the sidecar's node.
      const gateway = new GatewayInstaller(engine, DEFAULT_NETNS_IMAGE, this.now);
      const installGateway = async (sidecarId: string, serverId: string): Promise<void> => {
        const target = { id, subnet, sidecarId, serverId, workDir: join(policyDir, "gateway") };
        reinstallGateway = async () => void (await gateway.install(target));
        await phases.time("gateway", () => gateway.install(target));
      };
      // A gated server runs (held) beside the sidecar's container: the routes go in while the sidecar's node starts.
      const routed = serverCreated.then(async ({ serverId, gated }) => {
        const sidecarId = settings.catchAll && gated ? await Promise.race([sidecarContainer, sidecarReady.then(() => undefined, () => undefined)]) : undefined;
        if (sidecarId !== undefined) await installGateway(sidecarId, serverId);
        return sidecarId !== undefined;
      });
      const [[{ sidecarId, supervisor }, { serverId, stdio, gated }], routedEarly] = await settled(settled(sidecarReady, serverCreated), routed);
      // Not gated: started only once the sidecar serves, so its first DNS query or connection finds it there.
      if (!gated) await phases.time("server-start", () => engine.startContainer(serverId));
      if (settings.catchAll && !routedEarly) await installGateway(sidecarId, serverId);
      // The gated server's code runs from here: the sidecar serves, and the catch-all routes are in.
      if (gated) await writeLine(stdio, GATE_OPEN_LINE);

      logger.info({ server: id.server, run: id.run, network: network.name, sidecar: subnet.sidecar }, "sandbox started");
      events.publish(runtimeEvent(id.server, "sandbox-started", this.now(), { run: id.run, subnet: subnet.subnet, sidecar: subnet.sidecar, phases: phases.toJSON() }));
      const parts = {
        server: id.server,
        run: id.run,
        network: { id: network.id, name: network.name, ...subnet },
        egressNetwork: egress.name,
        sidecarId,
        serverId,
        stdio,
        supervisor,
        events,
        policyDir,
        policyFile: options.policyFile,
        ...(serverBoost ? { cpuBoost: { nanoCpus: toLimits(policy.server.resources).nanoCpus, ms: settings.startCpuBoostMs } } : {}),
        ...(bridgeFile !== undefined ? { mcpSocket: join(policyDir, "mcp", BRIDGE_SOCKET_NAME) } : {}),
        ...(watch !== undefined ? { watch } : {}),
        ...(options.removeEgressWhenUnused === true ? { removeEgressWhenUnused: true } : {}),
      };
      return new StartedSandbox(parts, engine, logger, this.now);
    } catch (err) {
      for (const undo of cleanup.reverse()) await undo().catch((e: unknown) => logger.warn({ err: e }, "cleanup after a failed start failed"));
      events.close();
      throw err;
    }
  }

  /** Shared by all sandboxes; created on first use, concurrent creators tolerated. */
  private async ensureEgressNetwork(name: string): Promise<NetworkInfo> {
    const { engine } = this.deps;
    const existing = await engine.inspectNetwork(name);
    if (existing !== undefined) return existing;
    try {
      return await engine.createNetwork(egressNetworkSpec(name));
    } catch (err) {
      const raced = await engine.inspectNetwork(name);
      if (raced !== undefined) return raced;
      throw err;
    }
  }

  /**
   * The first free /28 of the pool. A concurrent start may hold a candidate in Docker's IPAM
   * before its network is listed; a refused candidate is skipped from then on.
   */
  private async createInternalNetwork(id: SandboxIdentity, pool: string): Promise<{ network: NetworkInfo; subnet: SandboxSubnet }> {
    const { engine } = this.deps;
    const refused: string[] = [];
    let lastError: unknown;
    for (let attempt = 0; attempt < SUBNET_ATTEMPTS; attempt++) {
      const used = (await engine.listNetworks()).flatMap((n) => n.subnets.map((s) => s.subnet));
      const subnet = candidateSubnets(pool, [...used, ...refused]).next().value;
      if (subnet === undefined) break;
      try {
        return { network: await engine.createNetwork(internalNetworkSpec(id, subnet)), subnet };
      } catch (err) {
        lastError = err;
        if (!hasRuntimeCode(err, "HANGAR_DOCKER") || !/overlap/i.test((err as Error).message)) throw err;
        refused.push(subnet.subnet);
      }
    }
    throw runtimeError("HANGAR_SUBNET_EXHAUSTED", `no free /28 left in runtime.sandboxSubnets ${pool}`, { cause: lastError });
  }

  /**
   * The sandbox CA certificate, and the system roots plus it, for the server to read (never the
   * key), in a folder of the run's policy folder: removed with it, whichever way the run ends.
   */
  private async writeCaFiles(policyDir: string, ca: CaMaterial): Promise<string> {
    const dir = join(policyDir, "ca");
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    await writeFile(join(dir, "ca.crt"), ca.certPem, { mode: 0o644 });
    await writeFile(join(dir, "bundle.pem"), [...rootCertificates, ca.certPem].join("\n"), { mode: 0o644 });
    return dir;
  }

  /** A private copy the sidecar reads (and re-reads on reload); readable by its non-root user. */
  private async writePolicy(options: SandboxStartOptions, id: SandboxIdentity, baseline: string | undefined): Promise<string> {
    const parent = id.stateDir ?? defaultStateDir();
    await mkdir(parent, { recursive: true });
    const dir = await mkdtemp(join(parent, `${id.server}-${id.run}-`));
    await chmod(dir, 0o755);
    await writeFile(join(dir, "policy.yaml"), await readFile(options.policyFile), { mode: 0o644 });
    if (baseline !== undefined) await writeFile(join(dir, "baseline.json"), baseline, { mode: 0o644 });
    return dir;
  }
}

/**
 * The baseline the sidecar will enforce, validated on the host first: a sidecar refusing it
 * would only say "not ready". Only a frozen baseline of this very server is enforced. The
 * policy's own `baseline.file` may still be learning (the server runs without drift checks,
 * with a warning); a baseline asked for explicitly must be frozen.
 */
async function frozenBaselineText(options: SandboxStartOptions, logger: Logger): Promise<string | undefined> {
  const named = options.baselineFile ?? options.policy.baseline.file;
  if (named === undefined || named === false) return undefined;
  const fromPolicy = options.baselineFile === undefined;
  const file = fromPolicy ? resolve(dirname(options.policyFile), named) : named;
  const result = await loadBaselineFile(file);
  if (!result.ok) throw new HangarError("HANGAR_CONFIG_INVALID", `baseline ${file} is invalid:\n${formatIssues(result.issues)}`, { data: { file } });
  const frozen = asFrozen(result.baseline);
  if (frozen === undefined && fromPolicy) {
    logger.warn({ server: options.policy.name, baseline: file }, "the policy's baseline is still learning; running without drift checks until it is frozen");
    return undefined;
  }
  if (frozen === undefined) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `baseline ${file} is still learning; freeze it first (hangar baseline freeze ${file})`, { data: { file } });
  }
  if (frozen.server !== options.policy.name) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `baseline ${file} is for server ${frozen.server}, not ${options.policy.name}`, { data: { file } });
  }
  return serialiseBaseline(frozen);
}

/**
 * Both results, once both steps have ended: a step that fails does not leave the other running
 * unseen, so the cleanup it registered runs too. Throws the first failure.
 */
async function settled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}

/** Written before the server may read it; a stdin that is gone fails the start. */
async function writeLine(stdio: { readonly stdin: NodeJS.WritableStream | undefined }, line: string): Promise<void> {
  const stdin = stdio.stdin;
  if (stdin === undefined) throw runtimeError("HANGAR_DOCKER", "the server's stdin is not attached; its start gate cannot open");
  await new Promise<void>((resolveWrite, reject) => stdin.write(line, (err) => (err ? reject(err) : resolveWrite())));
}

/** Whether any rule of the policy has the sidecar terminate TLS. */
function inspects(policy: Policy): boolean {
  return policy.egress.allow.some((entry) => entry.inspect === true);
}

/** runtime.upstreamCaFile, copied beside the policy the sidecar reads; a bad file stops the start. */
/** For gVisor: the OCI runtime, and a resolv.conf naming the sidecar, in the run's policy folder (removed with it). */
async function gvisorSettings(choice: IsolationChoice, policyDir: string, sidecar: string): Promise<{ ociRuntime: string; resolvConf: string } | undefined> {
  const ociRuntime = ociRuntimeFor(choice.isolation);
  if (ociRuntime === undefined) return undefined;
  const resolvConf = join(policyDir, "resolv.conf");
  await writeFile(resolvConf, resolvConfFor(sidecar), { mode: 0o644 });
  return { ociRuntime, resolvConf };
}

/**
 * runtime.transport http: the folder the bridge makes its socket in, inside the run's policy
 * folder (removed with it). Writable by the sandbox's uid, which is not the control plane's.
 */
async function bridgeSocketDir(policyDir: string): Promise<string> {
  const dir = join(policyDir, "mcp");
  await mkdir(dir);
  await chmod(dir, 0o777);
  return dir;
}

async function copyUpstreamCa(file: string, policyDir: string): Promise<true> {
  let text: string;
  try {
    text = await readFile(resolve(file), "utf8");
  } catch (err) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `runtime.upstreamCaFile ${file}: ${(err as Error).message}`, { data: { file } });
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `runtime.upstreamCaFile ${file}: no PEM certificate in it`, { data: { file } });
  }
  await writeFile(join(policyDir, "upstream-ca.pem"), text, { mode: 0o644 });
  return true;
}
