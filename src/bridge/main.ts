/**
 * The bridge's entry point (bundled to dist/bridge/main.js, one file with no dependencies,
 * so it runs in any server image that has node): `node main.js --listen <where> -- <server...>`.
 * Exits with the server's exit code; 2 for a usage error, 1 when it cannot start.
 */
import { isHangarError } from "../core/errors.js";
import { parseBridgeArgs } from "./bridge-args.js";
import { resolveBridgeCommand } from "./npm-command.js";
import { StdioHttpBridge } from "./stdio-http-bridge.js";

// Its stderr is the server's stderr (the control plane keeps its tail): one line per event.
const report = (message: string, extra: Record<string, unknown> = {}): void => void process.stderr.write(`${JSON.stringify({ bridge: message, ...extra })}\n`);

try {
  const args = await resolveBridgeCommand(parseBridgeArgs(process.argv.slice(2)));
  const bridge = await StdioHttpBridge.start({ ...args, onError: (err) => report("relay error", { error: err.message }) });
  report("listening", { address: bridge.address, command: args.command });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void bridge.close());
  process.exitCode = await bridge.exited;
  await bridge.close();
} catch (err) {
  report("failed", { error: (err as Error).message });
  process.exitCode = isHangarError(err, "HANGAR_USAGE") && !(err.cause instanceof Error) ? 2 : 1;
}
