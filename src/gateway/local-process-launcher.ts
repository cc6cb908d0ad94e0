import { dirname, isAbsolute, resolve } from "node:path";
import type { Readable } from "node:stream";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { secretValueReplacer } from "../core/audit/redaction.js";
import { HangarError } from "../core/errors.js";
import type { Policy } from "../core/policy/policy-schema.js";
import { JsonLineReader } from "./json-line-reader.js";
import { ObservedTransport } from "./observed-transport.js";
import type { LaunchedServer, LaunchOptions, ServerLauncher, UpstreamEvent, UpstreamExit } from "./server-launcher.js";

/**
 * UNSANDBOXED. Runs a policy's `server.command` as a plain child process of the gateway,
 * speaking MCP over its stdio (the SDK's StdioClientTransport). Nothing is enforced: no
 * network isolation, no sidecar, no resource limits, so there are no egress events. It
 * exists for tests and for developing the gateway without Docker; `hangar serve` uses it
 * only when told to with --unsandboxed, and says so on every start.
 *
 * The child gets the SDK's minimal inherited environment (PATH, HOME, ...), the policy's
 * env values and its secrets (from the secret source), and runs in the policy file's folder.
 */
export interface LocalProcessLauncherOptions {
  /** Lines of stderr kept for error messages. Default 20. */
  readonly stderrTailLines?: number;
}

const EMPTY_EVENTS: AsyncIterable<UpstreamEvent> = {
  [Symbol.asyncIterator]: () => ({ next: async () => ({ value: undefined, done: true }) }),
};

export class LocalProcessLauncher implements ServerLauncher {
  readonly kind = "local-process";
  readonly sandboxed = false;
  private readonly tailLines: number;

  constructor(options: LocalProcessLauncherOptions = {}) {
    this.tailLines = options.stderrTailLines ?? 20;
  }

  async launch(policy: Policy, options: LaunchOptions): Promise<LaunchedServer> {
    const [command, ...commandArgs] = policy.server.command ?? [];
    if (command === undefined) {
      throw new HangarError("HANGAR_GATEWAY_LAUNCH_FAILED", `server ${JSON.stringify(policy.name)}: the local launcher runs server.command, and this policy has none (npm and image servers need the Docker launcher)`, {
        data: { server: policy.name },
      });
    }
    // No sidecar here to substitute a sentinel: the real value would have to go in the env, which `inject` forbids.
    const injected = policy.server.secretRules?.filter((r) => r.inject !== undefined).map((r) => r.name) ?? [];
    if (injected.length > 0) {
      throw new HangarError(
        "HANGAR_GATEWAY_LAUNCH_FAILED",
        `server ${JSON.stringify(policy.name)}: secret(s) ${injected.join(", ")} use inject, which needs the sandbox's sidecar; the local launcher would have to put the value in the server's env (use the Docker launcher)`,
        { data: { server: policy.name, secrets: injected } },
      );
    }
    const env: Record<string, string> = { ...policy.server.env };
    const secretValues: string[] = [];
    for (const name of policy.server.secrets) {
      const value = options.secretSource[name];
      if (value === undefined) {
        throw new HangarError("HANGAR_GATEWAY_LAUNCH_FAILED", `server ${JSON.stringify(policy.name)}: secret ${name} is not set in the environment`, { data: { server: policy.name, secret: name } });
      }
      env[name] = value;
      secretValues.push(value);
    }
    options.signal?.throwIfAborted();

    const cwd = dirname(options.policyFile);
    // A relative command with a slash ("./server.js") is relative to the policy, like its other paths.
    const executable = command.includes("/") && !isAbsolute(command) ? resolve(cwd, command) : command;
    const inner = new StdioClientTransport({ command: executable, args: [...commandArgs, ...policy.server.args], env, cwd, stderr: "pipe" });
    useJsonLineReader(inner);

    const redact = secretValueReplacer(secretValues);
    const tail: string[] = [];
    const stderr = inner.stderr as Readable | null;
    stderr?.setEncoding("utf8");
    let partial = "";
    stderr?.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const raw of lines) {
        const line = redact(raw.slice(0, 1000));
        options.logger.debug({ server: policy.name, line }, "server stderr");
        tail.push(line);
        if (tail.length > this.tailLines) tail.shift();
      }
    });

    let stopping = false;
    let resolveExit!: (exit: UpstreamExit) => void;
    const exited = new Promise<UpstreamExit>((r) => (resolveExit = r));
    const transport = new ObservedTransport(inner, () => resolveExit({ reason: stopping ? "stopped" : "exited", stderrTail: [...tail] }));

    try {
      await inner.start();
    } catch (cause) {
      throw new HangarError("HANGAR_GATEWAY_LAUNCH_FAILED", `server ${JSON.stringify(policy.name)}: cannot run ${JSON.stringify(command)}: ${(cause as Error).message}`, { cause, data: { server: policy.name } });
    }
    const pid = inner.pid;
    const onAbort = (): void => void stop();
    const stop = async (): Promise<void> => {
      stopping = true;
      options.signal?.removeEventListener("abort", onAbort);
      if (!transport.closed) await inner.close();
      await exited;
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted === true) {
      // Aborted while the process was spawning: the listener came too late to hear it.
      await stop();
      throw options.signal.reason;
    }

    return {
      transport,
      events: EMPTY_EVENTS,
      exited,
      description: `local process pid ${pid ?? "?"} (UNSANDBOXED)`,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }
}

/**
 * The SDK's stdio transport parses every line against JSONRPCMessageSchema, and the Client
 * parses it again; its reader is swapped for ours (json-line-reader.ts: the same framing,
 * without the first parse). `_readBuffer` is the SDK's own field, outside its types: should
 * a later SDK rename it, nothing is swapped and its reader stays (a test notices).
 */
export function useJsonLineReader(transport: StdioClientTransport): void {
  const fields = transport as unknown as { _readBuffer?: unknown };
  if (fields._readBuffer !== undefined) fields._readBuffer = new JsonLineReader();
}
