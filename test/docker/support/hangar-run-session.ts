import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { ContainerEngine } from "../../../src/docker/container-engine.js";
import { selectorTerms } from "../../../src/docker/labels.js";
import { hangarPackageRoot } from "../../../src/images/package-root.js";
import { Pruner } from "../../../src/runtime/pruner.js";
import { hangarCliCommand, type HangarCliCommand } from "./hangar-cli.js";

export interface HangarRunOptions {
  readonly policy: string;
  /** hangar.yaml (see writeRunConfig). */
  readonly config: string;
  /** --events <file.jsonl>. */
  readonly events?: string;
  /** Only to find and remove what the run left if it dies; the CLI talks to Docker itself. */
  readonly engine: ContainerEngine;
  /** How long `initialize` may take: the CLI builds whatever image is missing first. */
  readonly startTimeoutMs?: number;
  readonly cli?: HangarCliCommand;
  readonly env?: Readonly<Record<string, string>>;
}

export interface HangarRunExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The sandbox a `hangar run` process started, from its "is running" line on stderr. */
export interface RunningSandbox {
  readonly server: string;
  readonly run: string;
  /** performance.now() when the line arrived. */
  readonly at: number;
}

const RUNNING_LINE = /^hangar: (\S+) is running \(run ([0-9a-z]+),/;

/**
 * One `hangar run <policy>` process, as an MCP client would start it: the SDK's stdio client
 * spawns it and speaks MCP on its stdin/stdout. stderr is kept line by line; the sandbox's
 * run id is read from it, so whatever the run leaves behind can be found by label.
 */
export class HangarRunSession implements AsyncDisposable {
  private constructor(
    readonly client: Client,
    readonly cli: HangarCliCommand,
    private readonly child: ChildProcess,
    private readonly engine: ContainerEngine,
    /** Everything the process wrote on stderr so far, one entry per line. */
    readonly stderrLines: readonly string[],
    /** Resolves when the process has exited. */
    readonly exited: Promise<HangarRunExit>,
    private readonly running: Promise<RunningSandbox>,
  ) {}

  static async start(options: HangarRunOptions): Promise<HangarRunSession> {
    const cli = options.cli ?? hangarCliCommand();
    const args = [...cli.args, "run", options.policy, "--config", options.config, ...(options.events !== undefined ? ["--events", options.events] : [])];
    const transport = new StdioClientTransport({
      command: cli.command,
      args,
      cwd: hangarPackageRoot(),
      stderr: "pipe",
      env: { ...(process.env as Record<string, string>), ...options.env },
    });
    const lines: string[] = [];
    let seen: (value: RunningSandbox) => void = () => undefined;
    const running = new Promise<RunningSandbox>((resolve) => (seen = resolve));
    createInterface({ input: transport.stderr as unknown as NodeJS.ReadableStream }).on("line", (line) => {
      lines.push(line);
      // HANGAR_TEST_TRACE=1 echoes the CLI's progress and events.
      if (process.env["HANGAR_TEST_TRACE"]) console.log(`[hangar run] ${line}`);
      const match = RUNNING_LINE.exec(line);
      if (match) seen({ server: match[1]!, run: match[2]!, at: performance.now() });
    });
    const client = new Client({ name: "hangar-test", version: "0.0.0" });
    try {
      await client.connect(transport, { timeout: options.startTimeoutMs ?? 300_000 });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw new Error(`hangar run ${options.policy} did not complete initialize: ${(err as Error).message}\n${lines.slice(-30).join("\n")}`, { cause: err });
    }
    // The SDK keeps the child private; ending only its stdin is how a client that goes away
    // behaves (its close() also sends SIGTERM after 2 s, which would hide an EOF bug).
    const child = (transport as unknown as { _process?: ChildProcess })._process;
    if (child === undefined) throw new Error("the SDK's stdio transport has no child process");
    const exited = new Promise<HangarRunExit>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    return new HangarRunSession(client, cli, child, options.engine, lines, exited, running);
  }

  /** The sandbox's server name and run id, from the CLI's "is running" line. */
  async sandbox(timeoutMs = 10_000): Promise<RunningSandbox> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no "is running" line on stderr within ${timeoutMs} ms:\n${this.stderrLines.join("\n")}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** What a client does when it goes away: EOF on the CLI's stdin, and nothing else. */
  endStdin(): void {
    this.child.stdin?.end();
  }

  /** The `hangar run` process itself; SIGKILL is a crash it cannot clean up after. */
  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Ends stdin and resolves with the ms until the process exited (failing after `timeoutMs`). */
  async closeStdinAndTime(timeoutMs = 30_000): Promise<{ exit: HangarRunExit; ms: number }> {
    const t0 = performance.now();
    this.endStdin();
    const exit = await this.waitForExit(timeoutMs);
    return { exit, ms: performance.now() - t0 };
  }

  /** Waits for the process to exit, failing after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<HangarRunExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hangar run still running ${timeoutMs} ms later:\n${this.stderrLines.slice(-20).join("\n")}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Containers and networks still labelled with this run. */
  async remaining(): Promise<string[]> {
    const labels = selectorTerms({ run: (await this.sandbox()).run });
    const containers = await this.engine.listContainers({ labels });
    const networks = await this.engine.listNetworks({ labels });
    return [...containers.map((c) => `container ${c.name}`), ...networks.map((n) => `network ${n.name}`)];
  }

  /** Closes the client (the SDK's close: EOF, then SIGTERM), kills a process that lingers, and removes whatever its run left. */
  async [Symbol.asyncDispose](): Promise<void> {
    // The SDK's close() waits 2 s for a 'close' event that an exited process already sent.
    const gone = this.child.exitCode !== null || this.child.signalCode !== null;
    if (!gone) await this.client.close().catch(() => undefined);
    const exit = await this.waitForExit(20_000).catch(() => undefined);
    if (exit === undefined) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    const run = await this.sandbox(0).catch(() => undefined);
    if (run !== undefined) await new Pruner(this.engine).prune({ run: run.run });
  }
}
