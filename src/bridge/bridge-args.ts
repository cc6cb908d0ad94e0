import { HangarError } from "../core/errors.js";

/**
 * Where the bridge serves MCP: a TCP port (in a pod: `0.0.0.0:8080`) or a Unix socket (in a
 * Docker sandbox: the host has no address on the sandbox's network, so it reaches the bridge
 * through a socket in a folder it shares with the server container).
 */
export type BridgeListen = { readonly kind: "tcp"; readonly host: string; readonly port: number } | { readonly kind: "unix"; readonly path: string };

export interface BridgeArgs {
  readonly listen: BridgeListen;
  /** The stdio server: its command and arguments, everything after `--`. */
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * As given: with `--npm <package>` the command is that package's bin, found when the bridge
 * starts (in an image Hangar built from npm, under /app/node_modules), and everything after
 * `--` is its arguments. A renderer cannot know the bin; the image can.
 */
export type BridgeArgv = BridgeArgs | (Omit<BridgeArgs, "command"> & { readonly npm: string });

/** The path the bridge serves streamable HTTP on. */
export const BRIDGE_MCP_PATH = "/mcp";

export const BRIDGE_USAGE = "usage: bridge --listen <host:port | unix:/path/to.sock> [--npm <package>] -- <command> [args...]";

export function parseListen(text: string): BridgeListen {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (!path.startsWith("/")) throw new HangarError("HANGAR_USAGE", `--listen ${JSON.stringify(text)}: a Unix socket path must be absolute`);
    return { kind: "unix", path };
  }
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || !Number.isInteger(port) || port > 65535) {
    throw new HangarError("HANGAR_USAGE", `--listen ${JSON.stringify(text)} is not "host:port" (such as "0.0.0.0:8080") or "unix:/path"`);
  }
  return { kind: "tcp", host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** `--listen <where> [--npm <package>] -- <command or args...>`; every issue is a HANGAR_USAGE error naming the value. */
export function parseBridgeArgs(argv: readonly string[]): BridgeArgv {
  const separator = argv.indexOf("--");
  const own = separator === -1 ? argv : argv.slice(0, separator);
  const child = separator === -1 ? [] : argv.slice(separator + 1);
  let listen: BridgeListen | undefined;
  let npm: string | undefined;
  for (let i = 0; i < own.length; i++) {
    const arg = own[i]!;
    if (arg === "--listen") {
      const value = own[++i];
      if (value === undefined) throw new HangarError("HANGAR_USAGE", `--listen needs a value\n${BRIDGE_USAGE}`);
      listen = parseListen(value);
    } else if (arg === "--npm") {
      npm = own[++i];
      if (npm === undefined || !/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(npm)) throw new HangarError("HANGAR_USAGE", `--npm ${JSON.stringify(npm ?? "")} is not an npm package name\n${BRIDGE_USAGE}`);
    } else if (arg.startsWith("--listen=")) {
      listen = parseListen(arg.slice("--listen=".length));
    } else {
      throw new HangarError("HANGAR_USAGE", `unknown argument ${JSON.stringify(arg)}\n${BRIDGE_USAGE}`);
    }
  }
  if (listen === undefined) throw new HangarError("HANGAR_USAGE", `--listen is required\n${BRIDGE_USAGE}`);
  if (npm !== undefined) return { listen, npm, args: child };
  const [command, ...args] = child;
  if (command === undefined || command === "") throw new HangarError("HANGAR_USAGE", `no server command after "--"\n${BRIDGE_USAGE}`);
  return { listen, command, args };
}
