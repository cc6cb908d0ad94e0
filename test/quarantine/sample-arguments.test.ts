import { describe, expect, it } from "vitest";
import { z } from "zod";
import { PROBE_HOST, sampleArguments, urlLikeName } from "../../src/quarantine/sample-arguments.js";

describe("sampleArguments: arguments from a tool's input schema", () => {
  it("fills required strings, numbers, integers, booleans, enums and consts, and leaves optional fields out", () => {
    const schema = {
      type: "object",
      properties: {
        message: { type: "string" },
        count: { type: "integer", minimum: 3, maximum: 10 },
        ratio: { type: "number", exclusiveMinimum: 0 },
        loud: { type: "boolean" },
        level: { type: "string", enum: ["info", "warn"] },
        kind: { const: "fixed" },
        note: { type: "string" },
      },
      required: ["message", "count", "ratio", "loud", "level", "kind"],
    };
    expect(sampleArguments(schema)).toEqual({ message: "hangar-probe", count: 3, ratio: 0.5, loud: false, level: "info", kind: "fixed" });
  });

  it("points every URL field at the probe host, required or not, default or not (format uri, or a URL-like name)", () => {
    const schema = z.toJSONSchema(
      z.object({
        name: z.string().default("README.md.gz"),
        data: z.url().default("https://raw.githubusercontent.com/x/y/README.md"),
        callbackUrl: z.string().optional(),
        webhook_url: z.string(),
        target: z.string(),
      }),
      { io: "input" },
    );
    expect(sampleArguments(schema, { tool: "gzip" })).toEqual({
      data: `http://${PROBE_HOST}/gzip/data`,
      callbackUrl: `http://${PROBE_HOST}/gzip/callbackUrl`,
      webhook_url: `http://${PROBE_HOST}/gzip/webhook_url`,
      target: "hangar-probe",
    });
  });

  it("formats: email, date-time, uuid; lengths are respected", () => {
    const schema = {
      type: "object",
      properties: { to: { type: "string", format: "email" }, at: { type: "string", format: "date-time" }, id: { type: "string", format: "uuid" }, code: { type: "string", minLength: 20, maxLength: 20 }, tiny: { type: "string", maxLength: 3 } },
      required: ["to", "at", "id", "code", "tiny"],
    };
    const args = sampleArguments(schema);
    expect(args["to"]).toBe(`probe@${PROBE_HOST}`);
    expect(args["at"]).toBe("2025-01-01T00:00:00.000Z");
    expect(args["id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(String(args["code"])).toHaveLength(20);
    expect(args["tiny"]).toBe("han");
  });

  it("nested objects, arrays (minItems), $ref and nullable unions", () => {
    const schema = {
      type: "object",
      $defs: { Recipient: { type: "object", properties: { address: { type: "string", format: "email" } }, required: ["address"] } },
      properties: {
        recipients: { type: "array", items: { $ref: "#/$defs/Recipient" }, minItems: 2 },
        options: { type: "object", properties: { retries: { type: ["integer", "null"] } }, required: ["retries"] },
        mode: { anyOf: [{ type: "null" }, { type: "string", enum: ["a", "b"] }] },
      },
      required: ["recipients", "options", "mode"],
    };
    expect(sampleArguments(schema)).toEqual({
      recipients: [{ address: `probe@${PROBE_HOST}` }, { address: `probe@${PROBE_HOST}` }],
      options: { retries: 1 },
      mode: "a",
    });
  });

  it("stays small and finite on hostile schemas: self-references, absurd sizes, junk", () => {
    const loop = { type: "object", properties: { next: { $ref: "#" } }, required: ["next"] };
    expect(JSON.stringify(sampleArguments(loop)).length).toBeLessThan(200);
    const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { type: "string" }])), required: Array.from({ length: 1000 }, (_, i) => `p${i}`) };
    expect(Object.keys(sampleArguments(wide)).length).toBe(64);
    expect(sampleArguments({ type: "object", properties: { s: { type: "string", minLength: 1e9 } }, required: ["s"] })["s"]).toHaveLength(256);
    expect(sampleArguments(null)).toEqual({});
    expect(sampleArguments("nope")).toEqual({});
    expect(sampleArguments({ type: "object", properties: { a: 5 }, required: ["a"] })).toEqual({});
  });

  it("tells URL-like names", () => {
    for (const yes of ["url", "URL", "imageUrl", "webhook_url", "target-link", "urls", "endpoint", "homepage"]) expect(urlLikeName(yes), yes).toBe(true);
    for (const no of ["curl", "hurl", "name", "purple", "linkedin", "data"]) expect(urlLikeName(no), no).toBe(false);
  });
});
