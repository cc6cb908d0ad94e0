import { pino, type Logger, type DestinationStream } from "pino";
import { prettyDestination, type LogFormat } from "./log-pretty.js";

export { chooseLogFormat, formatLogLine, LOG_FORMATS, type LogFormat } from "./log-pretty.js";

/** Paths whose values never reach a log line: secret env values, tokens, auth headers. */
export const REDACT_PATHS = [
  "secret",
  "secrets",
  "*.secret",
  "*.secrets",
  "env",
  "*.env",
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "headers.cookie",
  "*.headers.cookie",
  "password",
  "*.password",
];

export function createLogger(options: { name: string; level?: string; destination?: DestinationStream; format?: LogFormat; colour?: boolean }): Logger {
  const destination = options.destination ?? pino.destination(2);
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env["HANGAR_LOG_LEVEL"] ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { name: options.name },
    },
    options.format === "pretty" ? prettyDestination(destination, { colour: options.colour === true }) : destination,
  );
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
