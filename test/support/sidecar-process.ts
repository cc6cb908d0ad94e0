import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { EgressEvent, LifecycleEvent, SidecarEvent } from "../../src/core/events.js";
import type { SidecarConfigInput } from "../../src/sidecar/sidecar-config.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The real sidecar entry point, run as its own process, with its event stream collected. */
export class SidecarProcess implements AsyncDisposable {
  readonly events: SidecarEvent[] = [];
  stderr = "";
  private exitCode: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly policyFile: string,
  ) {
    createInterface({ input: child.stdout! }).on("line", (line) => this.events.push(JSON.parse(line) as SidecarEvent));
    child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exitCode = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** `env`: added to this process's environment (HANGAR_SIDECAR_DNS_UDP, say). */
  static async start(policyYaml: string, config: Omit<SidecarConfigInput, "policyFile">, env: Record<string, string> = {}): Promise<SidecarProcess> {
    const dir = await mkdtemp(join(tmpdir(), "hangar-sidecar-"));
    const policyFile = join(dir, "policy.yaml");
    await writeFile(policyFile, policyYaml);
    const configFile = join(dir, "sidecar.json");
    await writeFile(configFile, JSON.stringify({ policyFile, ...config }));
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/sidecar/main.ts"), "--config", configFile], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, HANGAR_LOG_LEVEL: "warn", ...env },
    });
    const sidecar = new SidecarProcess(child, dir, policyFile);
    await sidecar.waitForLifecycle("started", 20_000);
    return sidecar;
  }

  started(): LifecycleEvent {
    return this.lifecycle("started")[0]!;
  }

  get dnsPort(): number {
    return (this.started().detail!["dns"] as { port: number }).port;
  }

  get proxyPort(): number {
    return (this.started().detail!["proxy"] as { port: number }).port;
  }

  lifecycle(action: LifecycleEvent["action"]): LifecycleEvent[] {
    return this.events.filter((e): e is LifecycleEvent => e.type === "lifecycle" && e.action === action);
  }

  egress(): EgressEvent[] {
    return this.events.filter((e): e is EgressEvent => e.type !== "lifecycle");
  }

  async waitForLifecycle(action: LifecycleEvent["action"], ms = 10_000, count = 1): Promise<LifecycleEvent> {
    await this.until(() => this.lifecycle(action).length >= count, ms, `lifecycle ${action}`);
    return this.lifecycle(action)[count - 1]!;
  }

  async waitForEvent(pred: (e: EgressEvent) => boolean, ms = 5000): Promise<EgressEvent> {
    await this.until(() => this.egress().some(pred), ms, "a matching event");
    return this.egress().find(pred)!;
  }

  async rewritePolicy(policyYaml: string): Promise<void> {
    await writeFile(this.policyFile, policyYaml);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  exited(): Promise<number | null> {
    return this.exitCode;
  }

  private async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (this.child.exitCode !== null) throw new Error(`sidecar exited (${this.child.exitCode}) waiting for ${what}:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}\nevents: ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      await this.exitCode;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
