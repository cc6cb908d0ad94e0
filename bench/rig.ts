/**
 * The processes a sidecar benchmark needs, on loopback: upstreams (bench/upstreams.ts) on
 * 127.0.0.2, and one or more sidecars on 127.0.0.1 whose policy allows the upstreams'
 * ports under api.bench.test. Each sidecar's events go down a pipe to a reader process of
 * their own, as in production (a log collector reads them), so the load generator in this
 * process never pays for reading them. `close()` stops everything, newest first.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import http from "node:http";
import { readFileSync } from "node:fs";
import { access, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { compileSidecarAddons } from "../src/images/native-addon.js";
import { bundleSidecar } from "../scripts/sidecar-bundle.js";
import type { Endpoint } from "./load.js";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The node flags between "node" and the script in the sidecar image's ENTRYPOINT: benches run the sidecar as it ships. */
export function imageNodeFlags(): string[] {
  const file = join(ROOT, "images/sidecar/Dockerfile");
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(file, "utf8"))?.[1];
  const argv = line === undefined ? undefined : (JSON.parse(line) as string[]);
  if (argv?.[0] !== "node") throw new Error(`${file}: ENTRYPOINT: expected ["node", ...flags, script], got ${line ?? "none"}`);
  return argv.slice(1, -1);
}

export interface Upstreams {
  readonly httpPort: number;
  readonly tlsPort: number;
  /** HTTPS (GET /bytes/N), for inspected TLS. */
  readonly httpsPort: number;
  readonly dnsPort: number;
  readonly caCert: string;
}

export interface RunningSidecar {
  readonly pid: number;
  readonly proxyPort: number;
  readonly dnsPort: number;
  /** declared port → the port its transparent listener took */
  readonly transparent: ReadonlyMap<number, number>;
  readonly eventLog: string;
}

export interface SidecarLaunch {
  /** A compiled main.js, or src/sidecar/main.ts with `tsx`. */
  readonly main: string;
  readonly tsx?: boolean;
  readonly nodeFlags?: readonly string[];
  /** Let the transparent listeners take free ports (a second sidecar beside the first). */
  readonly freePorts?: boolean;
  /** Keep only the first event line (the `started` one) and read the rest into /dev/null: long runs write gigabytes. */
  readonly discardEvents?: boolean;
  /** More sidecar config (e.g. `tls` for inspection), merged over the rig's. */
  readonly config?: Record<string, unknown>;
  /** One line written to the sidecar's stdin at start (config `secrets: "stdin"`). */
  readonly stdinLine?: string;
}

export function progress(msg: string): void {
  process.stderr.write(`  … ${msg}\n`);
}

/**
 * Compiles src/ with the project's build config into node_modules/.cache (so that it resolves the
 * project's dependencies) and bundles the sidecar's entry over it, as `npm run build` does.
 */
export async function buildSidecar(): Promise<string> {
  const outDir = join(ROOT, "node_modules/.cache/hangar-bench/dist");
  const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
  const code = await new Promise<number | null>((resolve) => {
    spawn(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.build.json"), "--outDir", outDir], { cwd: ROOT, stdio: "ignore" }).once("exit", resolve);
  });
  const main = join(outDir, "sidecar/main.js");
  // tsc emits despite type errors elsewhere in src/; only a missing entry point is fatal.
  if (code !== 0) progress(`warning: tsc exited with ${code}; running what it emitted`);
  await access(main);
  // What ships is the bundle over tsc's output (the image runs dist/sidecar/main.js as
  // `npm run build` leaves it): the same here, or RSS and start-up would be another program's.
  await bundleSidecar(main);
  // And the native addons the image compiles beside it (the DNS server's batched socket among them).
  await compileSidecarAddons(ROOT, outDir, (addon, err) => progress(`warning: ${addon.source} not built (${addon.without}): ${err.message}`));
  return main;
}

/** The HTTP upstream's count of accepted connections (its own request, on a fresh one, left out). */
export function upstreamConnections(target: Endpoint): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: target.host, port: target.port, path: "/__stats", agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve((JSON.parse(body) as { httpConnections: number }).httpConnections - 1));
      })
      .once("error", reject);
  });
}

export class Rig implements AsyncDisposable {
  private readonly children: ChildProcess[] = [];
  private sidecars = 0;
  upstreams!: Upstreams;
  upstreamPid = 0;

  private constructor(readonly dir: string) {}

  /** Starts the upstreams; the TLS one streams `streamBytes` on every connection. */
  static async start(options: { streamBytes: number }): Promise<Rig> {
    const rig = new Rig(await mkdtemp(join(tmpdir(), "hangar-bench-")));
    try {
      const up = rig.node([join(ROOT, "bench/upstreams.ts"), "127.0.0.2", String(options.streamBytes)], { tsx: true });
      rig.upstreams = await firstLine<Upstreams>(up, (l) => JSON.parse(l) as Upstreams);
      rig.upstreamPid = up.pid!;
      const { httpPort, tlsPort, httpsPort } = rig.upstreams;
      // inspect.bench.test: TLS terminated by the sidecar (bench/inspect.ts gives it a CA).
      await writeFile(
        join(rig.dir, "policy.yaml"),
        `version: 1\nname: bench\nserver: { npm: { package: "bench", version: "1.0.0" } }\negress:\n  allow:\n    - host: api.bench.test\n      ports: [${httpPort}, ${tlsPort}]\n` +
          `    - host: inspect.bench.test\n      ports: [${httpsPort}]\n      inspect: true\n`,
      );
    } catch (err) {
      await rig.close();
      throw err;
    }
    return rig;
  }

  async sidecar(launch: SidecarLaunch): Promise<RunningSidecar> {
    const n = ++this.sidecars;
    const { httpPort, tlsPort, httpsPort, dnsPort } = this.upstreams;
    const configFile = join(this.dir, `sidecar-${n}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        policyFile: join(this.dir, "policy.yaml"),
        answerAddress: "127.0.0.1",
        listen: {
          host: "127.0.0.1",
          dnsPort: 0,
          proxyPort: 0,
          ...(launch.freePorts === true ? { transparentPorts: { [httpPort]: 0, [tlsPort]: 0, [httpsPort]: 0 } } : {}),
        },
        upstreamDns: [`127.0.0.2:${dnsPort}`],
        trustedUpstreamRanges: ["127.0.0.2/32"],
        ...launch.config,
      }),
    );
    const events = await this.eventPipe(`events-${n}`, launch.discardEvents === true);
    const child = this.node([launch.main, "--config", configFile], { tsx: launch.tsx === true, nodeFlags: launch.nodeFlags ?? [], stdout: events.fd, stdin: launch.stdinLine !== undefined });
    if (launch.stdinLine !== undefined) child.stdin!.write(`${launch.stdinLine}\n`);
    await events.close();
    const started = await firstLogLine(events.log, child, (l) => {
      const e = JSON.parse(l) as { type: string; action?: string; detail?: { proxy: { port: number }; dns: { port: number }; transparent: Record<string, number> } };
      return e.type === "lifecycle" && e.action === "started" ? e.detail! : undefined;
    });
    const transparent = new Map(Object.entries(started.transparent).map(([k, v]) => [Number(k), v]));
    return { pid: child.pid!, proxyPort: started.proxy.port, dnsPort: started.dns.port, transparent, eventLog: events.log };
  }

  /** Stops every process, newest first (a sidecar still writes events while it drains, so its reader goes after it). */
  async close(): Promise<void> {
    for (const c of this.children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      // A profiling sidecar writes its profile on the way out: give it a while.
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
    }
    this.children.length = 0;
    await rm(this.dir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Sends SIGTERM to everything at once, for an interrupted run. */
  kill(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill("SIGTERM");
  }

  private node(args: string[], options: { tsx: boolean; nodeFlags?: readonly string[]; stdout?: number; stdin?: boolean }): ChildProcess {
    const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...(options.tsx ? ["--import", "tsx"] : []), ...args], {
      cwd: ROOT,
      stdio: [options.stdin === true ? "pipe" : "ignore", options.stdout ?? "pipe", "inherit"],
      env: { ...process.env, HANGAR_LOG_LEVEL: "warn" },
    });
    this.children.push(child);
    return child;
  }

  /** A FIFO drained by `cat` into a log file (or, with `discard`, all but its first line into /dev/null); `fd` is its write end. */
  private async eventPipe(name: string, discard = false): Promise<{ fd: number; log: string; close: () => Promise<void> }> {
    const log = join(this.dir, `${name}.jsonl`);
    const fifo = join(this.dir, `${name}.fifo`);
    if (spawnSync("mkfifo", [fifo]).status !== 0) {
      // No mkfifo: a plain file (cheaper for the sidecar than a pipe, so slightly flattering).
      const file = await open(log, "w");
      return { fd: file.fd, log, close: () => file.close() };
    }
    const reader = discard ? '{ head -n 1 > "$1"; exec cat > /dev/null; } < "$0"' : 'exec cat "$0" > "$1"';
    this.children.push(spawn("sh", ["-c", reader, fifo, log], { stdio: "ignore" }));
    const writer = await open(fifo, "w"); // returns once cat has opened the read end
    return { fd: writer.fd, log, close: () => writer.close() };
  }
}

function firstLine<T>(child: ChildProcess, pick: (line: string) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error("timed out waiting for the upstreams")), 30_000);
    rl.on("line", (line) => {
      const got = pick(line);
      if (got === undefined) return;
      clearTimeout(timer);
      rl.close();
      resolve(got);
    });
    child.once("exit", (code) => reject(new Error(`the upstreams exited with ${code}`)));
  });
}

/** Polls a log file until `pick` accepts a line; fails if `child` exits first. */
async function firstLogLine<T>(file: string, child: ChildProcess, pick: (line: string) => T | undefined): Promise<T> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}`);
    const text = await readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n")) {
      const got = line.length > 0 ? pick(line) : undefined;
      if (got !== undefined) return got;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("timed out waiting for the sidecar to start");
}
