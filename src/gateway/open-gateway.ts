import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { AuditStore } from "../audit/audit-store.js";
import { auditPaths } from "../audit/audit-paths.js";
import { loadSigner } from "../audit/signing-keys.js";
import { InFlightCalls } from "../core/audit/attribution.js";
import { FlowTracker } from "../core/gateway/flow-tracker.js";
import { Rbac } from "../core/gateway/rbac.js";
import { ApprovalGate } from "./approval-gate.js";
import { AuditWriter } from "./audit-writer.js";
import type { HangarConfig } from "./config/load-hangar-config.js";
import type { FleetStatus } from "./fleet-status.js";
import { Gateway } from "./gateway.js";
import { GatewayMetrics } from "./gateway-metrics.js";
import { GovernedServer } from "./governed-server.js";
import { ManifestCache } from "./manifest-cache.js";
import type { ServerLauncher } from "./server-launcher.js";
import { StatusFileWriter } from "./status-file.js";
import type { Tracing } from "../telemetry/tracing.js";

/**
 * The gateway's composition root: from a loaded hangar.yaml and a launcher to a running
 * Gateway with its audit writer, metrics and status file. Everything with a clock or
 * randomness takes it from here, so tests control them.
 */
export interface OpenGatewayOptions {
  readonly config: HangarConfig;
  readonly launcher: ServerLauncher;
  readonly logger: Logger;
  readonly version: string;
  /** Where secret values are read from; default process.env. */
  readonly secretSource?: Readonly<Record<string, string | undefined>>;
  /** Write .hangar/status.json; default true. */
  readonly statusFile?: boolean;
  readonly now?: () => number;
  readonly random?: () => number;
  /** OpenTelemetry spans (see telemetry/open-tracing.ts); default none. The caller shuts it down. */
  readonly tracing?: Tracing;
}

export interface OpenGateway {
  readonly gateway: Gateway;
  readonly audit: AuditWriter;
  readonly metrics: GatewayMetrics;
  readonly inFlight: InFlightCalls;
  /** Tells status which endpoint serves (set once the endpoint listens). */
  setEndpoint(endpoint: FleetStatus["endpoint"]): void;
  status(): FleetStatus;
  /** Stops every server, writes the final status, audits the stop and closes the log. Safe to call twice. */
  close(): Promise<void>;
}

export async function openGateway(options: OpenGatewayOptions): Promise<OpenGateway> {
  const { config, launcher, logger } = options;
  const now = options.now ?? Date.now;
  const paths = auditPaths(config.auditPath);
  await mkdir(dirname(config.auditPath), { recursive: true, mode: 0o700 });
  const signer = existsSync(paths.privateKey) ? loadSigner(paths.privateKey) : undefined;
  if (signer === undefined) logger.warn({ key: paths.privateKey }, "no audit signing key: the log is hash-chained but its checkpoints are unsigned (run hangar init)");
  const store = AuditStore.open({ path: config.auditPath, ...(signer !== undefined ? { signer, anchorPath: paths.anchor } : {}), logger, now });
  const audit = new AuditWriter(store, logger);
  const metrics = new GatewayMetrics();
  const inFlight = new InFlightCalls();
  const rbac = config.rbac !== undefined ? new Rbac(config.rbac) : Rbac.allowAll();
  if (!rbac.enabled) logger.warn("no rbac section in the configuration: every identity may call every tool");
  if (!launcher.sandboxed) logger.warn({ launcher: launcher.kind }, "servers run UNSANDBOXED as plain local processes: no egress enforcement, no isolation (tests and development only)");

  const manifests = new ManifestCache(config.paths.manifests, logger);
  const gate = new ApprovalGate(audit, now, logger);
  // Servers report list changes to the gateway, which exists only once they do.
  const listChanged = { notify: (): void => undefined };
  // Each server's manifest scan checks its tools against the others'.
  const fleet: { servers: readonly GovernedServer[] } = { servers: [] };
  const servers = await Promise.all(
    config.servers.map(async (s) => {
      const cached = await manifests.read(s.name);
      return new GovernedServer({
        policy: s.policy,
        policyFile: s.policyFile,
        launcher,
        launchOptions: { runtime: config.runtime, secretSource: options.secretSource ?? process.env, stateDir: config.paths.stateDir, logger },
        settings: config.settings,
        gate,
        audit,
        manifests,
        metrics,
        inFlight,
        ...(cached !== undefined ? { cached } : {}),
        peers: () => fleet.servers,
        onListChanged: () => listChanged.notify(),
        logger,
        now,
        version: options.version,
        ...(options.random !== undefined ? { random: options.random } : {}),
        ...(options.tracing !== undefined ? { tracing: options.tracing } : {}),
      });
    }),
  );
  fleet.servers = servers;
  const flows = config.flows.length > 0 ? new FlowTracker(config.flows) : undefined;
  const gateway = new Gateway({ servers, rbac, audit, metrics, inFlight, callTimeoutMs: config.settings.callTimeoutMs, logger, now, ...(flows !== undefined ? { flows } : {}), ...(options.tracing !== undefined ? { tracing: options.tracing } : {}) });
  listChanged.notify = () => gateway.notifyListChanged();

  const startedAt = new Date(now()).toISOString();
  let endpoint: FleetStatus["endpoint"] = { kind: "stdio" };
  const status = (): FleetStatus =>
    gateway.status({ version: 1, pid: process.pid, startedAt, endpoint, launcher: { kind: launcher.kind, sandboxed: launcher.sandboxed }, audit: config.auditPath });
  const statusWriter = options.statusFile === false ? undefined : new StatusFileWriter(config.paths.status, status, logger);
  await statusWriter?.start();

  audit.write({
    kind: "policy",
    data: {
      action: "gateway-started",
      identity: config.identity,
      detail: { config: config.file, servers: config.servers.map((s) => s.name), launcher: launcher.kind, sandboxed: launcher.sandboxed, rbac: rbac.enabled, pid: process.pid },
    },
  });

  let closing: Promise<void> | undefined;
  return {
    gateway,
    audit,
    metrics,
    inFlight,
    setEndpoint: (e) => {
      endpoint = e;
    },
    status,
    close: () =>
      (closing ??= (async () => {
        await gateway.close();
        await statusWriter?.stop((s) => ({ ...s, stoppedAt: new Date(now()).toISOString() }));
        audit.write({ kind: "policy", data: { action: "gateway-stopped", detail: { pid: process.pid } } });
        audit.close();
      })()),
  };
}
