/**
 * The peers of bench/peers.ts (Squid, tinyproxy, dnsmasq) and its clients (wrk, dnsperf), each
 * run inside a private mount namespace whose /etc/hosts, /etc/resolv.conf and
 * /etc/nsswitch.conf name loopback only, so nothing they resolve can leave the machine; and the
 * CPU time of a process tree, from /proc. Linux and root only (for `unshare -m`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer, connect as netConnect } from "node:net";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { compileAddon, UDP_BATCH_ADDON } from "../src/images/native-addon.js";
import { progress, ROOT } from "./rig.js";

/** The declared name: Rig's policy allows it, and every peer's allowlist is the same. */
export const HOST = "api.bench.test";


/** Runs commands in a private mount namespace whose name service points at loopback only. */
export class LoopbackNamespace {
  private constructor(private readonly files: { hosts: string; resolv: string; nsswitch: string }) {}

  static async create(dir: string): Promise<LoopbackNamespace> {
    const files = { hosts: join(dir, "hosts"), resolv: join(dir, "resolv.conf"), nsswitch: join(dir, "nsswitch.conf") };
    await writeFile(files.hosts, `127.0.0.1 localhost\n127.0.0.2 ${HOST}\n`);
    // Port 53 on loopback: nobody listens there, so a stray lookup fails fast and stays here.
    await writeFile(files.resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    await writeFile(files.nsswitch, "hosts: files dns\n");
    const ns = new LoopbackNamespace(files);
    const check = spawnSync(...ns.argv(["cat", "/etc/resolv.conf", "/etc/hosts"]), { encoding: "utf8" });
    const servers = [...(check.stdout ?? "").matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]!);
    if (check.status !== 0 || servers.length === 0 || !servers.every((s) => s.startsWith("127."))) {
      throw new Error(`could not set up a loopback-only mount namespace (needs root and unshare): ${check.stderr}`);
    }
    return ns;
  }

  argv(command: readonly string[]): [string, string[]] {
    const script = 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && mount --bind "$3" /etc/nsswitch.conf && shift 3 && exec "$@"';
    return ["unshare", ["-m", "--propagation", "private", "sh", "-c", script, "peers-ns", this.files.hosts, this.files.resolv, this.files.nsswitch, ...command]];
  }
}

/** User + system CPU ms of `pid` and its live descendants, plus the children it has reaped. */
export function treeCpuMs(pid: number): number {
  const parent = new Map<number, number>();
  const own = new Map<number, number>();
  let reaped = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "latin1");
    } catch {
      continue; // exited meanwhile
    }
    // After "pid (comm) ", field 3 (state) is index 0: ppid 1, utime 11, stime 12, cutime 13, cstime 14.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const p = Number(entry);
    parent.set(p, Number(f[1]));
    own.set(p, Number(f[11]) + Number(f[12]));
    if (p === pid) reaped = Number(f[13]) + Number(f[14]);
  }
  const inTree = (p: number): boolean => {
    for (let at = p, hops = 0; at > 1 && hops < 64; at = parent.get(at) ?? 0, hops++) if (at === pid) return true;
    return false;
  };
  let ticks = reaped;
  for (const [p, t] of own) if (inTree(p)) ticks += t;
  return ticks * 10; // USER_HZ is 100
}

export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m === null ? NaN : Number(m[1]) / 1024;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function untilTcp(port: number, child: ChildProcess, name: string): Promise<void> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, "127.0.0.1", () => resolve(true)).once("error", () => resolve(false));
      s.once("connect", () => s.destroy());
    });
    if (up) return;
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port}`);
}

async function untilDns(port: number, child: ChildProcess, name: string): Promise<void> {
  const udp = createSocket("udp4");
  try {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
      const answered = new Promise<boolean>((resolve) => {
        udp.once("message", () => resolve(true));
        setTimeout(() => resolve(false), 200);
      });
      udp.send(dnsPacket.encode({ type: "query", id: 1, questions: [{ type: "A", name: HOST }] }), port, "127.0.0.1");
      if (await answered) return;
    }
    throw new Error(`${name} did not answer on 127.0.0.1:${port}`);
  } finally {
    udp.close();
  }
}

export interface Peer {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
}

/** Starts and stops the peers and the clients, all inside the namespace. */
export class PeerSet {
  private readonly children: ChildProcess[] = [];

  constructor(
    private readonly ns: LoopbackNamespace,
    private readonly dir: string,
  ) {}

  start(name: string, command: readonly string[]): ChildProcess {
    const child = spawn(...this.ns.argv(command), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.once("exit", (code, signal) => {
      if (signal === null && code !== 0) progress(`${name} exited with ${code}: ${stderr.trim()}`);
    });
    this.children.push(child);
    return child;
  }

  async squid(ports: { http: number; tls: number }): Promise<Peer> {
    const port = await freePort();
    const conf = join(this.dir, "squid.conf");
    await writeFile(
      conf,
      [
        `http_port 127.0.0.1:${port}`,
        `acl bench_host dstdomain ${HOST}`,
        `acl bench_ports port ${ports.http} ${ports.tls}`,
        `acl tls_port port ${ports.tls}`,
        "acl CONNECT method CONNECT",
        "http_access deny CONNECT !tls_port",
        "http_access allow bench_host bench_ports",
        "http_access deny all",
        "cache deny all",
        "cache_mem 0 MB",
        "access_log none",
        "cache_store_log none",
        `cache_log ${join(this.dir, "squid-cache.log")}`,
        `pid_filename ${join(this.dir, "squid.pid")}`,
        `coredump_dir ${this.dir}`,
        "hosts_file /etc/hosts",
        "dns_nameservers 127.0.0.1",
        "pinger_enable off",
        "visible_hostname bench",
        "shutdown_lifetime 0 seconds",
        "max_filedescriptors 4096",
        "",
      ].join("\n"),
    );
    const child = this.start("squid", ["squid", "-N", "-f", conf]);
    await untilTcp(port, child, "squid");
    return { name: "squid", pid: child.pid!, port };
  }

  async tinyproxy(ports: { tls: number }): Promise<Peer> {
    const port = await freePort();
    const filter = join(this.dir, "tinyproxy.filter");
    await writeFile(filter, `^${HOST.replaceAll(".", "\\.")}$\n`);
    const conf = join(this.dir, "tinyproxy.conf");
    await writeFile(
      conf,
      [
        "User nobody",
        "Group nogroup",
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 60",
        "LogLevel Critical",
        "MaxClients 256",
        "Allow 127.0.0.1",
        `Filter "${filter}"`,
        "FilterExtended Yes",
        "FilterURLs No",
        "FilterDefaultDeny Yes",
        `ConnectPort ${ports.tls}`,
        "DisableViaHeader Yes",
        "",
      ].join("\n"),
    );
    const child = this.start("tinyproxy", ["tinyproxy", "-d", "-c", conf]);
    await untilTcp(port, child, "tinyproxy");
    return { name: "tinyproxy", pid: child.pid!, port };
  }

  async dnsmasq(name: string, upstreamDnsPort: number, cache: boolean): Promise<Peer> {
    const port = await freePort();
    const child = this.start(name, [
      "dnsmasq",
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      "--pid-file=",
      "--log-facility=-",
      // The allowlist: the one declared name goes to our upstream; every other name is NXDOMAIN.
      `--server=/${HOST}/127.0.0.2#${upstreamDnsPort}`,
      "--address=/#/",
      `--cache-size=${cache ? 10_000 : 0}`,
    ]);
    await untilDns(port, child, name);
    return { name, pid: child.pid!, port };
  }

  /**
   * The DNS floor on our own stack (bench/dns-floor.mjs): a bare Node UDP responder with the
   * sidecar's node flags, answering the allowed name and refusing the rest with no policy at all.
   * With `batchAddon` (the sidecar's batched UDP addon, built by buildBatchAddon), its socket is
   * read and written in batches instead of through dgram.
   */
  async dnsFloor(name: string, nodeFlags: readonly string[], batchAddon?: string): Promise<Peer> {
    const port = await freePort();
    const script = join(ROOT, "bench/dns-floor.mjs");
    const child = this.start(name, [process.execPath, ...nodeFlags, script, String(port), HOST, ...(batchAddon !== undefined ? [batchAddon] : [])]);
    await untilDns(port, child, name);
    return { name, pid: child.pid!, port };
  }

  /** Runs a client to completion inside the namespace, killed after `timeoutMs`. */
  run(command: readonly string[], timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(...this.ns.argv(command), { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`${command[0]} exited with ${code}: ${out.slice(-2000)}`));
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([exited, sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
    this.children.length = 0;
  }

  kill(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill("SIGKILL");
  }
}

/**
 * Compiles the sidecar's batched UDP addon (images/sidecar/native/udp-batch.c), as the image
 * builder does, into `dir`; undefined, with the reason, when it cannot.
 */
export async function buildBatchAddon(dir: string): Promise<{ file?: string; reason?: string }> {
  try {
    return { file: await compileAddon(ROOT, UDP_BATCH_ADDON, join(dir, "udp-batch.node")) };
  } catch (err) {
    return { reason: (err as Error).message.slice(-500) };
  }
}
