import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { chooseLogFormat, createLogger, formatLogLine } from "../../src/log.js";
import { hangar } from "../cli/capture-io.js";

/** A pino destination that keeps what it is given. */
function capture(): { stream: Writable & { write(text: string): boolean }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

describe("log format", () => {
  it("pretty: one readable line per record, fields as key=value, secrets still redacted", () => {
    const out = capture();
    const logger = createLogger({ name: "hangar-gateway", level: "info", destination: out.stream, format: "pretty" });
    logger.info({ server: "mail", run: "ab12", token: "sk-live-123", note: "two words" }, "sandbox started");
    const line = out.text();
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hangar-gateway: sandbox started server=mail run=ab12 token=\[redacted\] note="two words"\n$/);
    expect(line).not.toContain("sk-live-123");
    expect(line).not.toContain("{");
  });

  it("json: pino's JSON lines, unchanged", () => {
    const out = capture();
    const logger = createLogger({ name: "hangar-gateway", level: "info", destination: out.stream, format: "json" });
    logger.warn({ server: "mail" }, "slow");
    const record = JSON.parse(out.text()) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 40, name: "hangar-gateway", server: "mail", msg: "slow" });
  });

  it("pretty: an error's stack follows on indented lines; colour only when asked", () => {
    const err = new Error("engine gone");
    const line = formatLogLine(JSON.stringify({ level: 50, time: 0, name: "x", msg: "failed", err: { type: "Error", message: err.message, stack: err.stack } }), { colour: true });
    const [head, ...rest] = line.trimEnd().split("\n");
    expect(head).toContain("\u001b[31mERROR\u001b[0m x: failed err=\"engine gone\"");
    expect(rest[0]).toBe("    Error: engine gone");
    expect(rest.slice(1).every((l) => l.startsWith("        at ") || l.startsWith("    "))).toBe(true);
    expect(formatLogLine("not json")).toBe("not json\n");
  });

  it("default: pretty on a terminal, JSON elsewhere; the option and HANGAR_LOG_FORMAT choose explicitly", () => {
    expect(chooseLogFormat(undefined, {}, true)).toBe("pretty");
    expect(chooseLogFormat(undefined, {}, false)).toBe("json");
    expect(chooseLogFormat("json", {}, true)).toBe("json");
    expect(chooseLogFormat(undefined, { HANGAR_LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(chooseLogFormat("json", { HANGAR_LOG_FORMAT: "pretty" }, true)).toBe("json");
    expect(() => chooseLogFormat("yaml", {}, true)).toThrow(/--log-format "yaml": expected json or pretty/);
    expect(() => chooseLogFormat(undefined, { HANGAR_LOG_FORMAT: "xml" }, true)).toThrow(/HANGAR_LOG_FORMAT "xml"/);
  });

  it("hangar serve: a --log-format or HANGAR_LOG_FORMAT it does not know is a usage error (exit 2), before anything starts", async () => {
    const bad = await hangar(["serve", "--log-format", "yaml", "--config", "/nonexistent/hangar.yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--log-format "yaml": expected json or pretty');
    const badEnv = await hangar(["serve", "--config", "/nonexistent/hangar.yaml"], { env: { HANGAR_LOG_FORMAT: "xml" } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('HANGAR_LOG_FORMAT "xml": expected json or pretty');
  });
});
