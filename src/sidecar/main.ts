#!/usr/bin/env node
/**
 * The sidecar process: `node dist/sidecar/main.js --config <file.json>` (or the JSON in
 * HANGAR_SIDECAR_CONFIG). Events go to stdout as JSON lines, logs to stderr. SIGHUP
 * reloads the policy; SIGTERM/SIGINT drain and exit. Any crash exits non-zero: the sandbox
 * then has no egress at all until the runtime restarts us (fail closed).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isHangarError } from "../core/errors.js";
import { createLogger } from "../log.js";
import { UDP_BATCH_ADDON_FILE, loadUdpBatchAddon, type UdpBatchAddon } from "./dns/udp-batch-addon.js";
import { EventWriter } from "./event-writer.js";
import { parseSidecarConfig } from "./parse-sidecar-config.js";
import { Sidecar } from "./sidecar.js";

const logger = createLogger({ name: "hangar-sidecar" });

function fail(message: string, code = 2): never {
  process.stderr.write(`hangar-sidecar: ${message}\n`);
  process.exit(code);
}

const USAGE = `usage: hangar-sidecar --config <file.json>   (or HANGAR_SIDECAR_CONFIG='<json>')

Runs the egress proxy and DNS resolver for one sandbox. Events: JSON lines on stdout.
Signals: SIGHUP reloads the policy file; SIGTERM drains and exits.
HANGAR_SIDECAR_DNS_UDP: "dgram" answers DNS on Node's dgram socket instead of the batched one;
a path loads the batched socket's addon from there. Default: the addon beside the sidecar, if any.`;

/** The DNS server's batched UDP socket, as HANGAR_SIDECAR_DNS_UDP says (see USAGE): null for dgram, {} for the Sidecar's default. */
function udpBatch(): { udpBatch?: UdpBatchAddon | null } {
  const value = process.env["HANGAR_SIDECAR_DNS_UDP"];
  if (value === undefined || value === "") return {};
  if (value === "dgram") return { udpBatch: null };
  const addon = loadUdpBatchAddon(value);
  if (addon === undefined) fail(`HANGAR_SIDECAR_DNS_UDP: ${value}: no such file (give "dgram", or the path of udp-batch.node; the image has ${UDP_BATCH_ADDON_FILE})`);
  return { udpBatch: addon };
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true });
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (args.values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const file = args.values.config;
  let text: string;
  let source: string;
  if (file !== undefined) {
    source = file;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      fail(`${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
    }
  } else if (process.env["HANGAR_SIDECAR_CONFIG"] !== undefined) {
    source = "HANGAR_SIDECAR_CONFIG";
    text = process.env["HANGAR_SIDECAR_CONFIG"];
  } else {
    fail(`no configuration\n${USAGE}`);
  }
  const parsed = parseSidecarConfig(text, source);
  if (!parsed.ok) fail(parsed.errors.join("\n"));
  const dnsUdp = udpBatch();

  // One write per event-loop turn; 'exit' runs on every process.exit() and writes out the rest.
  const events = new EventWriter({ out: process.stdout });
  let sidecar: Sidecar | undefined;
  process.on("exit", () => {
    // A crash too: the counts go out with the last events, so the next process keeps the limits.
    sidecar?.flushCounters();
    events.close();
  });
  try {
    sidecar = await Sidecar.start({ config: parsed.config, events, logger, ...dnsUdp });
  } catch (err) {
    fail(isHangarError(err) ? `${err.message} [${err.code}]` : String((err as Error).stack ?? err));
  }
  const started = sidecar;

  process.on("SIGHUP", () => {
    void started.reload().then((r) => logger.info({ result: r }, r.ok ? "policy reloaded" : "policy reload failed; old policy stays in force"));
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      void started.destroy().then(() => process.exit(0));
      return;
    }
    stopping = true;
    logger.info({ signal }, "draining");
    const force = setTimeout(() => void started.destroy().then(() => process.exit(0)), 10_000);
    force.unref();
    void started.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

process.on("uncaughtException", (err) => {
  logger.fatal({ err }, "sidecar crashed; exiting so that the sandbox fails closed");
  process.exit(70);
});
process.on("unhandledRejection", (err) => {
  logger.fatal({ err }, "sidecar crashed (unhandled rejection); exiting so that the sandbox fails closed");
  process.exit(70);
});

await main();
