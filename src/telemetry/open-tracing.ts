import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { hangarPackageRoot } from "../images/package-root.js";
import { otelSettings } from "./otel-settings.js";
import { NO_TRACING, type Tracing } from "./tracing.js";

/**
 * Tracing for one process, from its environment: NO_TRACING unless OTEL_* settings ask for
 * traces. The OpenTelemetry SDK is imported here, on demand, so a process without tracing
 * never loads it (the CLI's start time stays what it was).
 */
export interface OpenTracingOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /** service.version; default package.json's. */
  readonly version?: string;
}

export async function openTracing(options: OpenTracingOptions): Promise<Tracing> {
  const settings = otelSettings(options.env);
  if (!settings.enabled) {
    if (settings.problem !== undefined) options.logger.warn({ problem: settings.problem }, "OpenTelemetry tracing is off");
    return NO_TRACING;
  }
  const { OtelTracing } = await import("./otel-tracing.js");
  const tracing = await OtelTracing.open(settings, { logger: options.logger, version: options.version ?? (await packageVersion()) });
  options.logger.info({ url: settings.url, protocol: settings.protocol, service: settings.serviceName }, "exporting OpenTelemetry traces");
  return tracing;
}

async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(hangarPackageRoot(), "package.json"), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}
