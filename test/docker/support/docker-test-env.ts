import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import Dockerode from "dockerode";
import type { Logger } from "pino";
import { stringify } from "yaml";
import { PolicySchema, type Policy, type PolicyInput } from "../../../src/core/policy/policy-schema.js";
import type { ContainerEngine, ImageInfo, NetworkInfo } from "../../../src/docker/container-engine.js";
import { DockerContainerEngine } from "../../../src/docker/docker-container-engine.js";
import { hangarLabels, LABEL_CONTENT, selectorTerms } from "../../../src/docker/labels.js";
import { BaseImageBuilder } from "../../../src/images/base-image-builder.js";
import { contentHash } from "../../../src/images/content-hash.js";
import { hangarPackageRoot } from "../../../src/images/package-root.js";
import { silentLogger } from "../../../src/log.js";
import { Pruner } from "../../../src/runtime/pruner.js";
import { RuntimeConfigSchema, type RuntimeConfig } from "../../../src/runtime/runtime-config.js";
import { egressNetworkSpec } from "../../../src/runtime/sandbox-specs.js";
import { withFileLock } from "./file-lock.js";
import { ensureTestSidecarImage } from "./sidecar-image.js";
import { requireOurResolvers, TestResolver } from "./test-resolver.js";

export const FIXTURES_IMAGE = "hangar-test/fixtures:local";
/** On everything a DockerTestEnv creates: the test file (relative to the repository), so a leftover names who left it. */
export const LABEL_TEST_FILE = "hangar.test-file";
export const STUB_SIDECAR_IMAGE = "hangar-test/stub-sidecar:local";
export const ROOT = hangarPackageRoot();
const FIXTURES_DIR = join(ROOT, "test/fixtures/images");

export interface RunningFixture {
  readonly id: string;
  readonly ip: string;
}

/**
 * One per test file: the composition root of the Docker tests. It builds the one dockerode
 * client, makes sure the images exist (skipping builds whose content hash is unchanged),
 * and labels everything it starts with its own run id, so cleanup() removes exactly that.
 * No Docker engine means the suite fails; it never skips.
 */
export class DockerTestEnv {
  readonly run = `t${randomBytes(3).toString("hex")}`;
  readonly logger: Logger = silentLogger();
  private egress: Promise<NetworkInfo> | undefined;
  private stateDir: Promise<string> | undefined;
  private ourResolver: Promise<TestResolver> | undefined;
  /** Set by cleanup(): from then on, asking for the network or the resolver is a test's bug, not a reason to create them again. */
  private closed = false;

  private constructor(
    /** Refuses to create a sidecar whose upstream resolvers are not containers of this file (see requireOurResolvers). */
    readonly engine: ContainerEngine,
    /** Addresses of the containers this file started on its egress network. */
    private readonly ours: Set<string>,
    readonly fixtures: ImageInfo,
    readonly sidecarImage: string,
    /** True when the real sidecar (src/sidecar/main.ts) is built into sidecarImage. */
    readonly realSidecar: boolean,
    /** The test file that created this env, for its labels. */
    private readonly testFile: string | undefined,
  ) {}

  static async create(): Promise<DockerTestEnv> {
    const testFile = testFileOf();
    process.env["TESTCONTAINERS_RYUK_DISABLED"] ??= "true";
    const engine = new DockerContainerEngine(new Dockerode());
    await engine.ping();
    const images = await prepareTestImages(engine);
    const ours = new Set<string>();
    return new DockerTestEnv(requireOurResolvers(engine, (ip) => ours.has(ip)), ours, images.fixtures, images.sidecarImage, images.realSidecar, testFile);
  }

  /** A per-file egress network, so tests never depend on (or disturb) a shared one; with this file's resolver on it. */
  async egressNetwork(): Promise<NetworkInfo> {
    const network = await this.network();
    // writeRunConfig finds the resolver by the network: whoever holds the network has one.
    await this.resolver();
    return network;
  }

  private network(): Promise<NetworkInfo> {
    if (this.closed) return Promise.reject(this.afterCleanup("the egress network"));
    // Memoised as a promise: concurrent callers share one network.
    this.egress ??= this.engine.createNetwork({ ...egressNetworkSpec(`hangar-egress-${this.run}`), labels: this.labels() });
    return this.egress;
  }

  /** The resolver every sidecar of this file asks (see TestResolver); its log tells what they asked. */
  resolver(): Promise<TestResolver> {
    if (this.closed) return Promise.reject(this.afterCleanup("the resolver"));
    this.ourResolver ??= (async () => {
      const resolver = await TestResolver.start(this.engine, {
        name: `hangar-${this.run}-upstream-dns`,
        image: this.fixtures.id,
        network: await this.network(),
        labels: this.labels(),
        dir: join(await this.stateRoot(), "resolver"),
      });
      this.ours.add(resolver.ip);
      return resolver;
    })();
    return this.ourResolver;
  }

  /** Upstreams started elsewhere (the demo's, which carry Docker aliases for docker compose users): answered by this file's resolver too. */
  async registerUpstreams(upstreams: ReadonlyArray<{ readonly name: string; readonly ip: string }>): Promise<void> {
    const resolver = await this.resolver();
    for (const upstream of upstreams) resolver.register([upstream.name], upstream.ip);
  }

  /** runtime.upstreamResolvers for a hangar.yaml a test writes itself. */
  async upstreamResolvers(): Promise<string[]> {
    return (await this.resolver()).upstreamResolvers;
  }

  labels(): Record<string, string> {
    return hangarLabels({ server: `test-${this.run}`, role: "test", run: this.run }, this.testFile !== undefined ? { [LABEL_TEST_FILE]: this.testFile } : {});
  }

  /**
   * Once cleanup() has run, a late caller (a promise a test did not await) would create the
   * network or the resolver again, after the file's leftover check: objects nobody removes.
   * It is refused instead, naming the run and the file, so the test that did it shows in the stack.
   */
  private afterCleanup(what: string): Error {
    return new Error(`DockerTestEnv ${this.run} (${this.testFile ?? "unknown file"}): ${what} asked for after cleanup(); it would be created again and left behind`);
  }

  async runtimeConfig(overrides: { maxRestarts?: number } = {}): Promise<RuntimeConfig> {
    const egress = await this.egressNetwork();
    return RuntimeConfigSchema.parse({
      runtime: {
        egressNetwork: egress.name,
        trustedUpstreamRanges: egress.subnets.map((s) => s.subnet),
        upstreamResolvers: await this.upstreamResolvers(),
        sidecar: { image: this.sidecarImage, ...(overrides.maxRestarts !== undefined ? { maxRestarts: overrides.maxRestarts } : {}) },
      },
    });
  }

  /** A policy for an attacker-run sandbox; the file lands in a temp folder removed by cleanup(). */
  async policy(name: string, input: Partial<PolicyInput> = {}): Promise<{ policy: Policy; file: string }> {
    const policy = PolicySchema.parse({
      version: 1,
      name,
      server: { image: { ref: FIXTURES_IMAGE }, command: ["node", "/fixtures/attacker.mjs"] },
      ...input,
    });
    const file = join(await this.stateRoot(), `${name}.yaml`);
    await writeFile(file, stringify({ version: 1, name, ...input, server: input.server ?? policy.server }));
    return { policy, file };
  }

  /** This file's temp folder (policies, the sandboxes' policy copies); removed by cleanup(). */
  stateRoot(): Promise<string> {
    this.stateDir ??= mkdtemp(join(tmpdir(), `hangar-test-${this.run}-`));
    return this.stateDir;
  }

  /**
   * Starts one of our fixture programs on the egress network. `aliases`: names this file's
   * resolver answers with its address (the sidecars' only resolver). They are not Docker
   * aliases: nothing of ours resolves them through the engine's resolver.
   */
  async runFixture(program: string, options: { name: string; env?: Record<string, string>; sysctls?: Record<string, string>; aliases?: string[] }): Promise<RunningFixture> {
    const egress = await this.network();
    const id = await this.engine.createContainer({
      name: `hangar-${this.run}-${options.name}`,
      image: this.fixtures.id,
      labels: this.labels(),
      cmd: [`/fixtures/${program}`],
      env: options.env ?? {},
      user: "10001:10001",
      init: true,
      endpoint: { network: egress.name },
      ...(options.sysctls ? { sysctls: options.sysctls } : {}),
    });
    await this.engine.startContainer(id);
    const info = await this.engine.inspectContainer(id);
    const ip = info?.addresses[egress.name];
    if (ip === undefined) throw new Error(`fixture ${options.name} has no address on ${egress.name}`);
    this.ours.add(ip);
    if (options.aliases !== undefined) (await this.resolver()).register(options.aliases, ip);
    return { id, ip };
  }

  /** Everything this file created: its sandboxes (run label), fixtures, the egress network. */
  async cleanup(): Promise<void> {
    this.closed = true;
    // A creation still under way finishes first, so the prune below sees what it made.
    await Promise.allSettled([this.egress, this.ourResolver]);
    await new Pruner(this.engine).prune({ run: this.run });
    if (this.egress !== undefined) await this.engine.removeNetwork((await this.egress).id);
    if (this.stateDir !== undefined) await rm(await this.stateDir, { recursive: true, force: true });
  }

  /** What is left with this run's labels (containers, networks, volumes). */
  async leftovers(): Promise<string[]> {
    const labels = selectorTerms({ run: this.run });
    const containers = await this.engine.listContainers({ labels });
    const networks = await this.engine.listNetworks({ labels });
    const volumes = await this.engine.listVolumes({ labels });
    return [...containers.map((c) => `container ${c.name}`), ...networks.map((n) => `network ${n.name}`), ...volumes.map((v) => `volume ${v.name}`)];
  }
}

/** The test file whose code is constructing this (the first `*.test.ts` frame of the stack), relative to the repository. */
function testFileOf(): string | undefined {
  const path = /\(?((?:file:\/\/)?\/[^\s():]+\.test\.ts):\d+/.exec(new Error().stack ?? "")?.[1];
  return path === undefined ? undefined : relative(ROOT, path.replace(/^file:\/\//, ""));
}

/**
 * Base, fixtures and sidecar images, prepared one test process at a time (a lock file)
 * so parallel test files do not build the same thing twice. Also the globalSetup's job.
 */
export async function prepareTestImages(engine: ContainerEngine): Promise<{ fixtures: ImageInfo; sidecarImage: string; realSidecar: boolean }> {
  await mkdir(join(ROOT, ".stage"), { recursive: true });
  return withFileLock(join(ROOT, ".stage/test-images.lock"), async () => {
    await new BaseImageBuilder(engine, ROOT).ensure();
    const fixtures = await ensureFixtureImage(engine, "Dockerfile", FIXTURES_IMAGE);
    const sidecar = realSidecarSourceExists() ? await ensureTestSidecarImage(engine, ROOT) : undefined;
    const sidecarImage = sidecar?.ref ?? (await ensureFixtureImage(engine, "Dockerfile.stub-sidecar", STUB_SIDECAR_IMAGE)).tags[0]!;
    return { fixtures, sidecarImage, realSidecar: sidecar !== undefined };
  });
}

/** Fixture images are rebuilt only when their Dockerfile or programs change. */
export async function ensureFixtureImage(engine: ContainerEngine, dockerfile: string, tag: string): Promise<ImageInfo> {
  const base = await engine.inspectImage("hangar/base:local");
  if (base === undefined) throw new Error("hangar/base:local is missing");
  const hash = await contentHash([
    { kind: "text", name: "base", value: base.id },
    { kind: "text", name: "dockerfile", value: dockerfile },
    { kind: "tree", name: "fixtures", dir: FIXTURES_DIR },
  ]);
  const existing = await engine.inspectImage(tag);
  if (existing?.labels[LABEL_CONTENT] === hash) return existing;
  const image = await engine.buildImage({
    contextDir: FIXTURES_DIR,
    dockerfile,
    tag,
    buildArgs: { BASE: "hangar/base:local" },
    labels: hangarLabels({ server: "fixtures", role: "test", run: "fixtures" }, { [LABEL_CONTENT]: hash }),
  });
  if (existing !== undefined && existing.id !== image.id) await engine.removeImage(existing.id, { force: false });
  return { ...image, tags: [tag] };
}

/** Sends one attacker command and waits for its answer line. */
export class AttackerSession {
  private buffer = "";
  private readonly waiting = new Map<number, (result: AttackResult) => void>();
  private nextId = 1;

  constructor(
    private readonly stdin: NodeJS.WritableStream,
    stdout: NodeJS.ReadableStream,
  ) {
    stdout.on("data", (chunk: Buffer) => {
      this.buffer += chunk.toString("utf8");
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) !== -1) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          const result = JSON.parse(line) as AttackResult;
          // HANGAR_TEST_TRACE=1 shows every probe's outcome (error codes, timings).
          if (process.env["HANGAR_TEST_TRACE"]) console.log(line);
          this.waiting.get(result.id)?.(result);
          this.waiting.delete(result.id);
        } catch {
          // not ours
        }
      }
    });
  }

  send(command: Record<string, unknown>): Promise<AttackResult> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }
}

export interface AttackResult {
  readonly id: number;
  readonly op: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly ms: number;
  readonly [key: string]: unknown;
}

/** GET http://<ip>:8080/__count on one of our upstream fixtures, from the host. */
export async function upstreamCount(ip: string): Promise<number> {
  const res = await fetch(`http://${ip}:8080/__count`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { count: number }).count;
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Whether the tests run the real sidecar (src/sidecar/main.ts, compiled). HANGAR_TEST_SIDECAR=stub
 * forces the stand-in, to tell a runtime failure from a sidecar in progress.
 */
export const realSidecarSourceExists = (): boolean =>
  process.env["HANGAR_TEST_SIDECAR"] !== "stub" && existsSync(join(ROOT, "src/sidecar/main.ts"));
