/**
 * Human-readable log lines for a terminal, from pino's JSON lines, without pino-pretty (and
 * its start-up cost): `12:00:01.234 INFO  hangar-gateway: sandbox started server=mail run=ab12`.
 * An error's stack follows on indented lines. A line that is not pino JSON passes unchanged.
 */

export type LogFormat = "json" | "pretty";

export const LOG_FORMATS: readonly LogFormat[] = ["json", "pretty"];

const LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const COLOURS: Readonly<Record<number, string>> = { 10: "90", 20: "36", 30: "32", 40: "33", 50: "31", 60: "35" };
/** pino's own fields, shown in the line's head rather than as key=value. */
const HEAD_FIELDS = new Set(["level", "time", "msg", "name", "pid", "hostname", "v"]);

export interface PrettyOptions {
  /** ANSI colours for the level (a terminal). */
  readonly colour?: boolean;
}

export function formatLogLine(line: string, options: PrettyOptions = {}): string {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return ensureNewline(line);
    record = parsed as Record<string, unknown>;
  } catch {
    return ensureNewline(line);
  }
  const level = typeof record["level"] === "number" ? record["level"] : 30;
  const label = (LEVELS[level] ?? String(level)).padEnd(5);
  const levelText = options.colour === true ? `\u001b[${COLOURS[level] ?? "0"}m${label}\u001b[0m` : label;
  const time = typeof record["time"] === "number" ? clock(record["time"]) : "";
  const name = typeof record["name"] === "string" ? `${record["name"]}: ` : "";
  const msg = typeof record["msg"] === "string" ? record["msg"] : "";
  const stacks: string[] = [];
  const fields = Object.entries(record)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => {
      const stack = errorStack(value);
      if (stack !== undefined) {
        stacks.push(stack);
        return `${key}=${JSON.stringify((value as { message?: unknown }).message ?? "")}`;
      }
      return `${key}=${fieldValue(value)}`;
    });
  const head = [time, levelText, `${name}${msg}`].filter((part) => part !== "").join(" ");
  const tail = stacks.map((stack) => `\n${stack.replace(/^/gm, "    ")}`).join("");
  return `${[head, ...fields].join(" ")}${tail}\n`;
}

/** A pino destination that writes pretty lines to `out` (stderr by default). */
export function prettyDestination(out: { write(text: string): unknown }, options: PrettyOptions = {}): { write(line: string): void } {
  return {
    write(chunk: string) {
      // pino writes one record per call, each ending in a newline; split defensively.
      for (const line of chunk.split("\n")) if (line !== "") out.write(formatLogLine(line, options));
    },
  };
}

/** --log-format's value, else HANGAR_LOG_FORMAT, else pretty on a terminal and JSON elsewhere. */
export function chooseLogFormat(explicit: string | undefined, env: Readonly<Record<string, string | undefined>>, isTty: boolean): LogFormat {
  const named = explicit ?? env["HANGAR_LOG_FORMAT"];
  if (named === undefined || named === "") return isTty ? "pretty" : "json";
  if (named === "json" || named === "pretty") return named;
  throw new RangeError(`${explicit !== undefined ? "--log-format" : "HANGAR_LOG_FORMAT"} ${JSON.stringify(named)}: expected json or pretty`);
}

function clock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function errorStack(value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const stack = (value as { stack?: unknown }).stack;
  return typeof stack === "string" ? stack : undefined;
}

function fieldValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function ensureNewline(line: string): string {
  return line.endsWith("\n") ? line : `${line}\n`;
}
