/**
 * Whether and where to export traces, from the standard OpenTelemetry environment variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Tracing
 * is on only when asked for: an OTLP endpoint is set, or OTEL_TRACES_EXPORTER=otlp. Pure.
 * Headers, timeouts, compression, sampler and batching (OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...) are read by the SDK itself.
 */
export type OtlpProtocol = "http/protobuf" | "http/json";

export type OtelSettings =
  | { readonly enabled: false; readonly why: string; readonly problem?: string }
  | { readonly enabled: true; readonly url: string; readonly protocol: OtlpProtocol; readonly serviceName: string };

type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_ENDPOINT = "http://localhost:4318";

export function otelSettings(env: Env): OtelSettings {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  if (value("OTEL_SDK_DISABLED")?.toLowerCase() === "true") return { enabled: false, why: "OTEL_SDK_DISABLED=true" };
  const exporters = value("OTEL_TRACES_EXPORTER")
    ?.split(",")
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== "");
  const tracesEndpoint = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = value("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (exporters !== undefined) {
    if (exporters.includes("none") || exporters.length === 0) return { enabled: false, why: "OTEL_TRACES_EXPORTER=none" };
    if (!exporters.includes("otlp")) return { enabled: false, why: "no otlp exporter", problem: `OTEL_TRACES_EXPORTER=${JSON.stringify(env["OTEL_TRACES_EXPORTER"])}: Hangar exports traces over OTLP only; expected otlp or none` };
  } else if (tracesEndpoint === undefined && endpoint === undefined) {
    return { enabled: false, why: "no OTEL_EXPORTER_OTLP_ENDPOINT" };
  }

  const protocolVar = value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = value(protocolVar) ?? "http/protobuf";
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    return { enabled: false, why: "unsupported protocol", problem: `${protocolVar}=${JSON.stringify(protocol)}: Hangar exports OTLP over HTTP only; expected http/protobuf or http/json` };
  }
  // The signal-specific endpoint is used as given; the general one gets the signal's path (spec).
  const url = tracesEndpoint ?? `${(endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, "")}/v1/traces`;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http");
  } catch {
    const name = tracesEndpoint !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
    return { enabled: false, why: "invalid endpoint", problem: `${name}=${JSON.stringify(tracesEndpoint ?? endpoint)}: not an http(s) URL` };
  }
  return { enabled: true, url, protocol, serviceName: value("OTEL_SERVICE_NAME") ?? "hangar" };
}
